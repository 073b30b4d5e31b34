package syslog

import (
	"bufio"
	"errors"
	"fmt"
	"io"
)

// ErrFrameTooLarge is a frame over the size limit. For octet counting the
// announced length is refused before the frame is read; for newline framing
// the rest of the over-long line is skipped.
var ErrFrameTooLarge = errors.New("syslog frame is over the size limit")

// Framer splits a TCP stream into syslog messages. The framing is detected
// from the first byte of the stream: a digit means RFC 6587 octet counting
// ("123 <34>1 ..."), anything else newline framing (one message per line,
// also ending at NUL).
type Framer struct {
	r        *bufio.Reader
	max      int
	detected bool
	octets   bool
	buf      []byte
}

// NewFramer reads frames of at most max bytes from r.
func NewFramer(r io.Reader, max int) *Framer {
	return &Framer{r: bufio.NewReaderSize(r, 64<<10), max: max}
}

// Next returns the next message, which stays valid until the following
// call. It returns io.EOF at a clean end of the stream, ErrFrameTooLarge for
// an oversize frame (the stream can go on after a newline-framed one), and
// another error when the stream cannot go on.
func (f *Framer) Next() ([]byte, error) {
	if !f.detected {
		b, err := f.r.Peek(1)
		if err != nil {
			return nil, err
		}
		f.detected, f.octets = true, b[0] >= '1' && b[0] <= '9'
	}
	if f.octets {
		return f.nextCounted()
	}
	return f.nextLine()
}

func (f *Framer) nextCounted() ([]byte, error) {
	n := 0
	for digits := 0; ; digits++ {
		c, err := f.r.ReadByte()
		if err != nil {
			if digits > 0 && errors.Is(err, io.EOF) {
				return nil, io.ErrUnexpectedEOF
			}
			return nil, err
		}
		if c == ' ' && digits > 0 {
			break
		}
		if c < '0' || c > '9' || digits == 0 && c == '0' {
			return nil, fmt.Errorf("octet counting: expected a length, found %q", c)
		}
		n = n*10 + int(c-'0')
		if n > f.max {
			return nil, fmt.Errorf("%w: a frame announces more than %d bytes", ErrFrameTooLarge, f.max)
		}
	}
	if cap(f.buf) < n {
		f.buf = make([]byte, n)
	}
	f.buf = f.buf[:n]
	if _, err := io.ReadFull(f.r, f.buf); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return f.buf, nil
}

func (f *Framer) nextLine() ([]byte, error) {
	f.buf = f.buf[:0]
	tooLarge := false
	for {
		c, err := f.r.ReadByte()
		if err != nil {
			if errors.Is(err, io.EOF) && len(f.buf) > 0 && !tooLarge {
				return f.buf, nil // the last message may lack its newline
			}
			return nil, err
		}
		if c == '\n' || c == 0 {
			if tooLarge {
				return nil, fmt.Errorf("%w: a line is longer than %d bytes", ErrFrameTooLarge, f.max)
			}
			if len(f.buf) == 0 {
				continue // blank lines between messages
			}
			return f.buf, nil
		}
		if len(f.buf) == f.max {
			tooLarge = true
			continue
		}
		if !tooLarge {
			f.buf = append(f.buf, c)
		}
	}
}
