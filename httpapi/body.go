package httpapi

import (
	"compress/zlib"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
)

// readBody reads an ingest body, decoded by its Content-Encoding (gzip,
// deflate, zstd, snappy), with the limit applied twice: to the bytes on the
// wire and to the decoded bytes, so that a small bomb costs at most the
// limit, answered 413.
func (a *API) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	limit := a.cfg.Limits.MaxBodyBytes
	raw := http.MaxBytesReader(w, r.Body, limit)
	tooLarge := func(what string) error {
		return errorf(http.StatusRequestEntityTooLarge, "%s is larger than %d bytes (--ingest-max-body)", what, limit)
	}
	var rd io.Reader = raw
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(raw)
		if err != nil {
			return nil, wireError(err, tooLarge, "gzip")
		}
		defer zr.Close()
		rd = zr
	case "deflate": // HTTP's deflate is the zlib format
		zr, err := zlib.NewReader(raw)
		if err != nil {
			return nil, wireError(err, tooLarge, "deflate")
		}
		defer zr.Close()
		rd = zr
	case "zstd":
		zr, err := zstd.NewReader(raw, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true),
			zstd.WithDecoderMaxMemory(uint64(limit)), zstd.WithDecoderMaxWindow(8<<20))
		if err != nil {
			return nil, err
		}
		defer zr.Close()
		rd = zr
	case "snappy":
		// The block format (what Loki and Prometheus clients send): its
		// header states the decoded length, checked before decoding.
		b, err := io.ReadAll(raw)
		if err != nil {
			return nil, wireError(err, tooLarge, "snappy")
		}
		return decodeSnappy(b, limit, tooLarge)
	default:
		return nil, errorf(http.StatusUnsupportedMediaType, "Content-Encoding %q is not supported: use gzip, deflate, zstd or snappy", enc)
	}
	body, err := io.ReadAll(io.LimitReader(rd, limit+1))
	if errors.Is(err, zstd.ErrWindowSizeExceeded) || errors.Is(err, zstd.ErrDecoderSizeExceeded) {
		return nil, tooLarge("the decoded body")
	}
	if err != nil {
		enc := strings.ToLower(r.Header.Get("Content-Encoding"))
		if enc == "" || enc == "identity" {
			enc = "request"
		}
		return nil, wireError(err, tooLarge, enc)
	}
	if int64(len(body)) > limit {
		return nil, tooLarge("the decoded body")
	}
	return body, nil
}

// decodeSnappy decodes a snappy block whose stated length is within limit.
func decodeSnappy(b []byte, limit int64, tooLarge func(string) error) ([]byte, error) {
	n, err := s2.DecodedLen(b)
	if err != nil {
		return nil, errorf(http.StatusBadRequest, "bad snappy body: %v", err)
	}
	if int64(n) > limit {
		return nil, tooLarge("the decoded body")
	}
	out, err := s2.Decode(make([]byte, n), b)
	if err != nil {
		return nil, errorf(http.StatusBadRequest, "bad snappy body: %v", err)
	}
	return out, nil
}

// wireError tells a body over the limit (413) from a corrupt one (400).
func wireError(err error, tooLarge func(string) error, what string) error {
	var mb *http.MaxBytesError
	if errors.As(err, &mb) {
		return tooLarge("the request body")
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return errorf(http.StatusBadRequest, "the %s body ends early", what)
	}
	return errorf(http.StatusBadRequest, "bad %s body: %v", what, err)
}
