// Package endpoint parses the address of a registry or hub,
// [SCHEME://]HOST[:PORT][/PATH], keeping the scheme: https:// means TLS
// even on a loopback address, http:// means plain HTTP, and an address
// without a scheme is reached over plain HTTP only on loopback, unless
// TLS was asked for (a CA file, or skipping verification).
package endpoint

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
)

// Schemes an address may be written with.
const (
	HTTPS = "https"
	HTTP  = "http"
)

// Address is a parsed registry or hub address.
type Address struct {
	// Scheme is HTTPS, HTTP, or "" when none was written.
	Scheme string
	// Host is host[:port], lower case, an IPv6 address in brackets.
	Host string
	// Path is what follows the host, without leading or trailing '/':
	// a registry's repository prefix, or OWNER/NAME:VERSION of a hub
	// package.
	Path string
}

// ErrInvalid: the address cannot be parsed.
var ErrInvalid = errors.New("invalid address")

// Parse reads [https://|http://]HOST[:PORT][/PATH]. The scheme is case
// insensitive; any other scheme, user information, a query, a fragment,
// white space, an empty host or a port outside 1-65535 is refused.
func Parse(s string) (Address, error) {
	bad := func(why string) (Address, error) {
		return Address{}, fmt.Errorf("%w %q: %s: write [https://|http://]HOST[:PORT][/PATH], e.g. https://127.0.0.1:5000/mirror", ErrInvalid, s, why)
	}
	if strings.TrimSpace(s) == "" {
		return bad("empty")
	}
	if strings.ContainsAny(s, " \t\r\n") {
		return bad("white space")
	}
	var a Address
	rest := s
	if scheme, after, ok := strings.Cut(s, "://"); ok {
		switch strings.ToLower(scheme) {
		case HTTPS, HTTP:
			a.Scheme = strings.ToLower(scheme)
		default:
			return bad(fmt.Sprintf("scheme %q: use https:// or http://", scheme))
		}
		rest = after
	}
	if strings.ContainsAny(rest, "?#") {
		return bad("a query or fragment")
	}
	host, path, _ := strings.Cut(rest, "/")
	a.Path = strings.Trim(path, "/")
	if strings.Contains(a.Path, "//") {
		return bad("empty path segment")
	}
	switch {
	case host == "":
		return bad("no host")
	case strings.Contains(host, "@"):
		return bad("user information: give credentials with docker login or skiff login")
	}
	name, port := host, ""
	if strings.HasPrefix(host, "[") {
		end := strings.Index(host, "]")
		if end < 0 {
			return bad("unclosed '[' in an IPv6 address")
		}
		name = host[1:end]
		switch tail := host[end+1:]; {
		case tail == "":
		case strings.HasPrefix(tail, ":"):
			port = tail[1:]
			if port == "" {
				return bad("empty port")
			}
		default:
			return bad("unexpected text after ']'")
		}
		if ip := net.ParseIP(name); ip == nil || ip.To4() != nil {
			return bad("not an IPv6 address in brackets")
		}
	} else if i := strings.LastIndex(host, ":"); i >= 0 {
		name, port = host[:i], host[i+1:]
		if strings.Contains(name, ":") {
			return bad("an IPv6 address needs brackets, e.g. [::1]:5000")
		}
		if port == "" {
			return bad("empty port")
		}
	}
	if name == "" {
		return bad("no host")
	}
	if strings.ContainsAny(name, "\"'\\<>%") {
		return bad("invalid characters in the host")
	}
	if port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || port[0] == '+' {
			return bad(fmt.Sprintf("port %q is not a number from 1 to 65535", port))
		}
	}
	a.Host = strings.ToLower(host)
	return a, nil
}

// PlainHTTP reports whether a is reached over plain HTTP: as its scheme
// says, else only a loopback host for which no TLS was asked (tls: a CA
// file was given, or TLS verification is skipped for it).
func (a Address) PlainHTTP(tls bool) bool {
	switch a.Scheme {
	case HTTP:
		return true
	case HTTPS:
		return false
	}
	return !tls && IsLoopback(a.Host)
}

// URL returns the base URL a is reached at: SCHEME://HOST, the scheme
// chosen as PlainHTTP(tls) says.
func (a Address) URL(tls bool) string {
	if a.PlainHTTP(tls) {
		return HTTP + "://" + a.Host
	}
	return HTTPS + "://" + a.Host
}

// String returns the address as it was written, normalized.
func (a Address) String() string {
	s := a.Host
	if a.Scheme != "" {
		s = a.Scheme + "://" + s
	}
	if a.Path != "" {
		s += "/" + a.Path
	}
	return s
}

// IsLoopback reports whether host (host[:port], an IPv6 address with or
// without brackets) names this machine: localhost or a loopback IP.
func IsLoopback(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.ToLower(strings.Trim(host, "[]"))
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
