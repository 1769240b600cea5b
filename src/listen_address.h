// Listen addresses ("host:port", ":port", "[::1]:port") for lagwatch's TCP servers: one parser.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <boost/asio/ip/tcp.hpp>

namespace lagwatch {

// Throws std::runtime_error("cannot listen on <listen>: <why>").
[[noreturn]] void throw_listen_error(const std::string& listen, std::string_view why);

// "host:port", ":port" (all IPv4 interfaces), "[v6-address]:port"; port 0 picks a free one. A
// host name is resolved once, synchronously. Throws as throw_listen_error() does.
boost::asio::ip::tcp::endpoint parse_listen_address(const std::string& listen);

// Parses `listen`, then opens, binds (SO_REUSEADDR) and listens on `acceptor`. Returns the bound
// port (useful with port 0). Throws as throw_listen_error() does, naming the address.
std::uint16_t listen_on(boost::asio::ip::tcp::acceptor& acceptor, const std::string& listen);

}  // namespace lagwatch
