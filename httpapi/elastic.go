package httpapi

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"time"

	"github.com/valyala/fastjson"

	flowg "github.com/flowg-server/flowg-server"
)

// ElasticPrefix is where the Elasticsearch-compatible API is served: point
// a shipper's Elasticsearch output at http://<node>:5080/elasticsearch.
const ElasticPrefix = "/elasticsearch"

// DefaultElasticStream takes bulk documents that name no index.
const DefaultElasticStream = "elasticsearch"

// elasticVersion is the version the handshake reports: clients check the
// major version (and, from 8, the product header) before they send.
const elasticVersion = "8.11.0"

// elasticHeaders marks an answer as Elasticsearch's, which the official
// clients from 7.14 check on every answer; the mux sets it on every route
// under ElasticPrefix, refusals included.
func elasticHeaders(w http.ResponseWriter) {
	w.Header().Set("X-Elastic-Product", "Elasticsearch")
}

// elasticInfo answers the handshake (GET /): the version and tagline.
func (a *API) elasticInfo(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusOK)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"name": "flowg", "cluster_name": "flowg", "cluster_uuid": "flowg",
		"version": map[string]any{"number": elasticVersion, "build_flavor": "default", "build_type": "flowg",
			"lucene_version": "9.8.0", "minimum_wire_compatibility_version": "7.17.0", "minimum_index_compatibility_version": "7.0.0"},
		"tagline": "You Know, for Search",
	})
}

// elasticHealth answers the health check some shippers make first.
func (a *API) elasticHealth(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"cluster_name": "flowg", "status": "green", "timed_out": false})
}

// elasticBulk takes a bulk request: pairs of an action line
// ({"index":{...}} or {"create":{...}}) and a document. Each document
// goes to the stream the StreamHeader names, else its _index, else the
// index of the path, else DefaultElasticStream; documents flatten as in
// struct ingest (@timestamp sets the time). The answer is the bulk API's:
// an item per action, with its status and, for a document refused, its
// error; the others are stored. delete and update are refused per item.
func (a *API) elasticBulk(w http.ResponseWriter, r *http.Request) {
	fixed, ok := a.pushStream(w, r)
	if !ok {
		return
	}
	body, release, ok := a.admit(w, r)
	if !ok {
		return
	}
	defer release()
	start := time.Now()
	items, list, err := parseBulk(body, fixed, r.PathValue("index"), start.UTC())
	if err != nil {
		a.reject(w, r, "parse", err)
		return
	}
	if !a.commitAll(w, r, list) {
		return
	}
	failed := false
	out := make([]map[string]any, len(items))
	for i, it := range items {
		res := map[string]any{"_index": it.index, "_id": it.id, "status": it.status}
		if it.status >= 300 {
			failed = true
			res["error"] = map[string]any{"type": it.errType, "reason": it.reason}
		} else {
			res["result"], res["_version"] = "created", 1
		}
		out[i] = map[string]any{it.action: res}
	}
	if failed {
		a.m.ingestRejected.WithLabelValues("record").Inc()
	}
	writeJSON(w, http.StatusOK, map[string]any{"took": time.Since(start).Milliseconds(), "errors": failed, "items": out})
}

// bulkItem is the answer to one action.
type bulkItem struct {
	action, index, id string
	status            int
	errType, reason   string
}

func parseBulk(body []byte, fixed, pathIndex string, now time.Time) ([]bulkItem, []streamBatch, error) {
	var items []bulkItem
	var out batches
	var p fastjson.Parser
	n := 0
	for line := 1; len(body) > 0; line++ {
		var l []byte
		l, body, _ = bytes.Cut(body, []byte{'\n'})
		if len(bytes.TrimSpace(l)) == 0 {
			continue
		}
		if n++; n > flowg.MaxBatchRecords {
			return nil, nil, errorf(http.StatusRequestEntityTooLarge, "more than %d actions", flowg.MaxBatchRecords)
		}
		v, err := p.ParseBytes(l)
		var o *fastjson.Object
		if err == nil {
			o, err = v.Object()
		}
		if err != nil || o.Len() != 1 {
			return nil, nil, errorf(http.StatusBadRequest, "line %d: an action line is one JSON object such as {\"index\":{}}", line)
		}
		var it bulkItem
		var meta *fastjson.Value
		o.Visit(func(k []byte, v *fastjson.Value) { it.action, meta = string(k), v })
		it.index = pathIndex
		if s := meta.GetStringBytes("_index"); len(s) > 0 {
			it.index = string(s)
		}
		it.id = string(meta.GetStringBytes("_id"))
		if it.id == "" {
			it.id = newDocID()
		}
		var doc []byte
		if it.action != "delete" {
			doc, body, _ = bytes.Cut(body, []byte{'\n'})
			line++
		}
		switch it.action {
		case "index", "create":
		case "delete", "update":
			it.status, it.errType, it.reason = 400, "action_request_validation_exception", it.action+" is not supported: logs are appended, never changed"
			items = append(items, it)
			continue
		default:
			return nil, nil, errorf(http.StatusBadRequest, "line %d: unknown bulk action %q", line-1, it.action)
		}
		stream := fixed
		if stream == "" {
			stream = DefaultElasticStream
			if it.index != "" {
				if s := streamNameOf(it.index); s != "" {
					stream = s
				}
			}
		}
		dv, err := p.ParseBytes(doc)
		if err != nil {
			it.status, it.errType, it.reason = 400, "document_parsing_exception", fmt.Sprintf("line %d: %v", line, err)
			items = append(items, it)
			continue
		}
		rec, err := toRecord(dv, "", now)
		if err != nil {
			it.status, it.errType, it.reason = 400, "document_parsing_exception", fmt.Sprintf("line %d: %v", line, err)
			items = append(items, it)
			continue
		}
		it.status = 201
		items = append(items, it)
		out.add(stream, rec)
	}
	return items, out.list, nil
}

// newDocID is a document ID as Elasticsearch makes them: 20 base64url
// characters.
func newDocID() string {
	var b [15]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
