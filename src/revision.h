// The source revision lagwatch was built from, for --version and lagwatch_build_info.
#pragma once

namespace lagwatch {

// git's 12-digit short hash at configure time, -DLAGWATCH_REVISION=<rev> when given (a
// container build has no .git), else "unknown". Defined in a file CMake generates, so a new
// commit recompiles that one file rather than everything a compile definition would reach.
extern const char* const kSourceRevision;

}  // namespace lagwatch
