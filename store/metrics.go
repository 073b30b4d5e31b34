package store

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

type metrics struct {
	storedRecords    prometheus.Counter
	commitSeconds    prometheus.Histogram
	commitRequests   prometheus.Histogram
	querySeconds     prometheus.Histogram
	scannedRecords   prometheus.Counter
	retentionDeleted prometheus.Counter
	sealedRecords    prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	return &metrics{
		storedRecords: f.NewCounter(prometheus.CounterOpts{
			Name: "flowg_store_records_written_total", Help: "Records committed to the log database.",
		}),
		commitSeconds: f.NewHistogram(prometheus.HistogramOpts{
			Name: "flowg_store_commit_seconds", Help: "Time to commit one group of ingest requests.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10),
		}),
		commitRequests: f.NewHistogram(prometheus.HistogramOpts{
			Name: "flowg_store_commit_group_requests", Help: "Ingest requests grouped into one commit.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 10),
		}),
		querySeconds: f.NewHistogram(prometheus.HistogramOpts{
			Name: "flowg_store_query_seconds", Help: "Time to answer one page of a query.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 10),
		}),
		scannedRecords: f.NewCounter(prometheus.CounterOpts{
			Name: "flowg_store_query_scanned_entries_total", Help: "Records and index entries read by queries.",
		}),
		retentionDeleted: f.NewCounter(prometheus.CounterOpts{
			Name: "flowg_store_retention_deleted_records_total", Help: "Records deleted by retention.",
		}),
		sealedRecords: f.NewCounter(prometheus.CounterOpts{
			Name: "flowg_store_sealed_records_total", Help: "Records moved from rows into blocks.",
		}),
	}
}

// collector reports, at each scrape, the usage of every stream, the
// on-disk size of every database and its file system's free space (the
// counters above are registered when they are made).
type collector struct {
	s           *Store
	streamRecs  *prometheus.Desc
	streamBytes *prometheus.Desc
	lsmBytes    *prometheus.Desc
	vlogBytes   *prometheus.Desc
	diskFree    *prometheus.Desc
	diskFull    *prometheus.Desc
	rows        *prometheus.Desc
}

func newCollector(s *Store) *collector {
	return &collector{
		s:           s,
		streamRecs:  prometheus.NewDesc("flowg_stream_records", "Records held by a stream.", []string{"stream"}, nil),
		streamBytes: prometheus.NewDesc("flowg_stream_bytes", "Bytes of records held by a stream.", []string{"stream"}, nil),
		lsmBytes:    prometheus.NewDesc("flowg_store_lsm_bytes", "On-disk size of a database's LSM tree.", []string{"db"}, nil),
		vlogBytes:   prometheus.NewDesc("flowg_store_vlog_bytes", "On-disk size of a database's value log.", []string{"db"}, nil),
		diskFree:    prometheus.NewDesc("flowg_store_disk_free_bytes", "Free space of the file system holding a database.", []string{"db"}, nil),
		diskFull: prometheus.NewDesc("flowg_store_disk_full",
			"1 while a database refuses writes because its file system has less free space than its reserve, else 0.", []string{"db"}, nil),
		rows: prometheus.NewDesc("flowg_store_row_records",
			"Records still stored as rows, waiting to be sealed into blocks (at most; deleted ones included).", nil, nil),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.streamRecs
	ch <- c.streamBytes
	ch <- c.lsmBytes
	ch <- c.vlogBytes
	ch <- c.diskFree
	ch <- c.diskFull
	ch <- c.rows
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	for _, name := range c.s.Logs.Streams() {
		u := c.s.Logs.Usage(name)
		ch <- prometheus.MustNewConstMetric(c.streamRecs, prometheus.GaugeValue, float64(u.Records), name)
		ch <- prometheus.MustNewConstMetric(c.streamBytes, prometheus.GaugeValue, float64(u.Bytes), name)
	}
	ch <- prometheus.MustNewConstMetric(c.rows, prometheus.GaugeValue, float64(c.s.Logs.hotRows()))
	for name, db := range map[string]interface{ Size() (int64, int64) }{
		"logs": c.s.Logs.db, "auth": c.s.Auth.db, "config": c.s.Logs.cfg.db,
	} {
		lsm, vlog := db.Size()
		ch <- prometheus.MustNewConstMetric(c.lsmBytes, prometheus.GaugeValue, float64(lsm), name)
		ch <- prometheus.MustNewConstMetric(c.vlogBytes, prometheus.GaugeValue, float64(vlog), name)
	}
	for _, g := range c.s.guards() {
		g.check()
		full := 0.0
		if g.full.Load() {
			full = 1
		}
		ch <- prometheus.MustNewConstMetric(c.diskFree, prometheus.GaugeValue, float64(g.free.Load()), g.db)
		ch <- prometheus.MustNewConstMetric(c.diskFull, prometheus.GaugeValue, full, g.db)
	}
}
