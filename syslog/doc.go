// Package syslog receives syslog messages over UDP, TCP and TLS, parses
// them (RFC 5424 and RFC 3164, detected per message) and hands them, in
// batches, to the Sink it is given.
//
// Parsing uses github.com/leodido/go-syslog, which copes with the variants
// real senders emit. TCP framing (RFC 6587 octet counting, or newline
// framing, detected per connection) is done here rather than with that
// library's stream parsers: those hand over parsed messages only, and a
// message that does not parse must still be stored with its raw text.
package syslog
