// Package dataset generates the seeded log records of the benchmarks: the
// same records, byte for byte, for flowg-server and for the stores it is
// measured against.
//
// Each record is a flat JSON object of about 270 bytes: timestamp, level
// (info 75%, warn 15%, error 5%, debug 5%), service (50, a few much busier
// than the rest), host (200), http.status, latency (ms, log-normal),
// a 32-hex trace ID and a message from one of 7 templates.
package dataset

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"time"
)

// Record is one generated record.
type Record struct {
	Time                 time.Time
	Level, Service, Host string
	Status               int
	Latency              float64
	TraceID, Message     string
}

var templates = []string{
	"GET /api/v1/items/%d answered in %s ms",
	"POST /api/v1/orders/%d created for customer c-%d",
	"connection refused while dialing upstream db-%d:5432",
	"cache miss for key session:%d, loading from store",
	"user u-%d logged in from 10.%d.%d.%d",
	"payment %d declined: insufficient funds",
	"worker %d finished batch in %s ms",
}

// Generator makes records in time order, evenly over [From, To).
type Generator struct {
	rng      *rand.Rand
	from     time.Time
	step     time.Duration
	i, n     int
	services []string
	weights  []float64 // cumulative
}

// New returns a generator of n records over [from, to), seeded.
func New(seed uint64, n int, from, to time.Time) *Generator {
	g := &Generator{rng: rand.New(rand.NewPCG(seed, 0x5eed)), from: from, step: to.Sub(from) / time.Duration(max(n, 1)), n: n}
	total := 0.0
	for i := range 50 {
		g.services = append(g.services, fmt.Sprintf("svc-%02d", i))
		total += 1 / math.Sqrt(float64(i+1)) // a few busy services, a long tail
		g.weights = append(g.weights, total)
	}
	for i := range g.weights {
		g.weights[i] /= total
	}
	return g
}

// Next returns the next record; false after the n-th.
func (g *Generator) Next() (Record, bool) {
	if g.i >= g.n {
		return Record{}, false
	}
	r := g.rng
	rec := Record{Time: g.from.Add(time.Duration(g.i) * g.step).Add(time.Duration(r.Int64N(int64(max(g.step, 1)))))}
	g.i++
	switch p := r.IntN(100); {
	case p < 75:
		rec.Level = "info"
	case p < 90:
		rec.Level = "warn"
	case p < 95:
		rec.Level = "error"
	default:
		rec.Level = "debug"
	}
	u := r.Float64()
	s := 0
	for s < len(g.weights)-1 && g.weights[s] < u {
		s++
	}
	rec.Service = g.services[s]
	rec.Host = "host-" + strconv.Itoa(r.IntN(200))
	rec.Status = []int{200, 200, 200, 200, 200, 201, 204, 301, 400, 404, 500, 503}[r.IntN(12)]
	if rec.Level == "error" {
		rec.Status = []int{500, 502, 503}[r.IntN(3)]
	}
	rec.Latency = math.Round(math.Exp(r.NormFloat64()*0.9+3.5)*1000) / 1000
	rec.TraceID = fmt.Sprintf("%016x%016x", r.Uint64(), r.Uint64())
	lat := strconv.FormatFloat(rec.Latency, 'f', -1, 64)
	switch t := r.IntN(len(templates)); t {
	case 0, 6:
		rec.Message = fmt.Sprintf(templates[t], r.IntN(100000), lat)
	case 1:
		rec.Message = fmt.Sprintf(templates[t], r.IntN(1000000), r.IntN(50000))
	case 4:
		rec.Message = fmt.Sprintf(templates[t], r.IntN(50000), r.IntN(256), r.IntN(256), r.IntN(256))
	default:
		rec.Message = fmt.Sprintf(templates[t], r.IntN(100000))
	}
	return rec, true
}

// AppendJSON appends the record as one line of NDJSON (no newline).
func (rec Record) AppendJSON(b []byte) []byte {
	b = append(b, `{"timestamp":"`...)
	b = rec.Time.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","level":"`...)
	b = append(b, rec.Level...)
	b = append(b, `","service":"`...)
	b = append(b, rec.Service...)
	b = append(b, `","host":"`...)
	b = append(b, rec.Host...)
	b = append(b, `","http.status":`...)
	b = strconv.AppendInt(b, int64(rec.Status), 10)
	b = append(b, `,"latency":`...)
	b = strconv.AppendFloat(b, rec.Latency, 'f', -1, 64)
	b = append(b, `,"trace_id":"`...)
	b = append(b, rec.TraceID...)
	b = append(b, `","message":`...)
	b = strconv.AppendQuote(b, rec.Message)
	return append(b, '}')
}
