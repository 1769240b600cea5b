// Listen-address parsing and binding shared by the HTTP server and the agent-check responder.
#include "listen_address.h"

#include <charconv>
#include <stdexcept>
#include <system_error>

#include <fmt/format.h>
#include <boost/asio/io_context.hpp>
#include <boost/system/error_code.hpp>

namespace lagwatch {

namespace net = boost::asio;
using tcp = net::ip::tcp;

void throw_listen_error(const std::string& listen, std::string_view why) {
  throw std::runtime_error(fmt::format("cannot listen on {}: {}", listen, why));
}

tcp::endpoint parse_listen_address(const std::string& listen) {
  const std::size_t colon = listen.rfind(':');
  if (colon == std::string::npos) {
    throw_listen_error(listen,
                       "expected host:port, :port or [ipv6-address]:port, e.g. 127.0.0.1:9817");
  }
  std::string host = listen.substr(0, colon);
  const std::string_view port_text = std::string_view(listen).substr(colon + 1);
  unsigned port = 0;
  const auto [end, error] =
      std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_text.empty() || error != std::errc() || end != port_text.data() + port_text.size() ||
      port > 65535) {
    throw_listen_error(listen, "the port must be a number from 0 to 65535");
  }
  const bool bracketed = host.size() >= 2 && host.front() == '[' && host.back() == ']';
  if (bracketed) {
    host = host.substr(1, host.size() - 2);
  } else if (host.find(':') != std::string::npos) {
    throw_listen_error(listen, "put an IPv6 address in brackets, e.g. [::1]:9817");
  }
  if (host.empty()) return {net::ip::address_v4::any(), static_cast<std::uint16_t>(port)};

  boost::system::error_code ec;
  net::ip::address address = net::ip::make_address(host, ec);
  if (ec && !bracketed) {
    // Not an IP literal: a name such as "localhost". One synchronous lookup at startup.
    net::io_context lookup_context;
    tcp::resolver resolver(lookup_context);
    const auto results = resolver.resolve(host, "", ec);
    if (ec || results.empty()) {
      throw_listen_error(listen, fmt::format("cannot resolve \"{}\": {}", host,
                                             ec ? ec.message() : std::string("no addresses")));
    }
    address = results.begin()->endpoint().address();
  } else if (ec) {
    throw_listen_error(listen, fmt::format("\"{}\" is not an IPv6 address", host));
  }
  return {address, static_cast<std::uint16_t>(port)};
}

std::uint16_t listen_on(tcp::acceptor& acceptor, const std::string& listen) {
  const tcp::endpoint endpoint = parse_listen_address(listen);
  boost::system::error_code ec;
  std::uint16_t port = 0;
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (!ec) port = acceptor.local_endpoint(ec).port();
  if (ec) throw_listen_error(listen, ec.message());
  return port;
}

}  // namespace lagwatch
