package syslog

import (
	"bytes"
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"
)

func frames(t *testing.T, input string, max int) ([]string, error) {
	t.Helper()
	f := NewFramer(strings.NewReader(input), max)
	var out []string
	for {
		b, err := f.Next()
		if errors.Is(err, ErrFrameTooLarge) && !f.octets {
			out = append(out, "<too large>")
			continue
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return out, err
		}
		out = append(out, string(b))
	}
}

func TestFramer_Success(t *testing.T) {
	cases := []struct {
		input string
		want  []string
	}{
		{"10 <1>1 - - x5 hello", []string{"<1>1 - - x", "hello"}},
		{"3 a\nb", []string{"a\nb"}},
		{"<1>first\n<2>second\r\n\n\n<3>third", []string{"<1>first", "<2>second\r", "<3>third"}},
		{"<1>a\x00<2>b\x00", []string{"<1>a", "<2>b"}},
		{"<1>" + strings.Repeat("x", 20) + "\n<2>ok\n", []string{"<too large>", "<2>ok"}},
	}
	for _, c := range cases {
		got, err := frames(t, c.input, 16)
		if err != nil || strings.Join(got, "|") != strings.Join(c.want, "|") {
			t.Errorf("frames(%q) = %q, %v; want %q", c.input, got, err, c.want)
		}
	}
}

func TestFramer_Failure(t *testing.T) {
	cases := []struct {
		input string
		want  string
	}{
		{"99999999999999999999 x", "over the size limit"},
		{"15 <1>1 - - x", "unexpected EOF"},
		{"5x", "expected a length"},
		{"5 hello05 x", "expected a length"},
		{"12", "unexpected EOF"},
	}
	for _, c := range cases {
		_, err := frames(t, c.input, 16)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("frames(%q) error %v, want %q", c.input, err, c.want)
		}
	}
}

// FuzzFramer checks that no frame is over the limit and that octet-counted
// frames written by a sender come back whole.
func FuzzFramer(f *testing.F) {
	for _, s := range []string{"5 hello", "<1>a\n<2>b\n", "99999999999 x", "0 ", "3 ab", "\x00\x00\n", "1 \n"} {
		f.Add([]byte(s), []byte("payload with\nnewline"))
	}
	f.Fuzz(func(t *testing.T, stream, payload []byte) {
		fr := NewFramer(bytes.NewReader(stream), 64)
		for range 1000 {
			b, err := fr.Next()
			if err != nil && !errors.Is(err, ErrFrameTooLarge) {
				break
			}
			if len(b) > 64 {
				t.Fatalf("frame of %d bytes over the limit of 64", len(b))
			}
		}
		if len(payload) == 0 || len(payload) > 64 {
			return
		}
		var enc bytes.Buffer
		for range 3 {
			enc.WriteString(strconv.Itoa(len(payload)) + " ")
			enc.Write(payload)
		}
		fr = NewFramer(&enc, 64)
		for i := range 3 {
			b, err := fr.Next()
			if err != nil || !bytes.Equal(b, payload) {
				t.Fatalf("frame %d = %q, %v; want %q", i, b, err, payload)
			}
		}
	})
}
