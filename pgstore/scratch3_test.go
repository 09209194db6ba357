package pgstore

import (
	"testing"
	"time"

	"chatbx.eu/privacy/mam"
)

func BenchmarkScratchMiddle(b *testing.B) {
	n := benchN(b, 100_000)
	ps := benchPG(b)
	loadPG(b, ps, n)
	ctx := b.Context()
	p, err := ps.Query(ctx, alice, mam.Query{Start: benchT0.Add(time.Duration(n/2) * time.Millisecond), Max: 1})
	if err != nil {
		b.Fatal(err)
	}
	raw, _ := mam.ParseID(p.Messages[0].ID)
	a := alice.String()
	cte, cargs := ps.rawPageSQL(mam.Query{After: p.Messages[0].ID, Max: 50})
	variants := []struct {
		name string
		sql  string
		args []any
	}{
		{"select1", "SELECT 1", nil},
		{"cte", cte, cargs},
		{"inline", `SELECT id, ts, with_bare, with_res, groupchat, real_jid, stanza, 0::bigint AS found, -1::bigint AS n FROM mam_messages WHERE archive = $1 AND NOT excluded
 AND ts >= (SELECT ts FROM mam_messages WHERE archive = $1 AND id = $2) AND (ts, seq) > (SELECT ts, seq FROM mam_messages WHERE archive = $1 AND id = $2) ORDER BY ts, seq LIMIT 51`, []any{a, raw[:]}},
		{"last", `SELECT id, ts, with_bare, with_res, groupchat, real_jid, stanza, 0::bigint AS found, -1::bigint AS n FROM mam_messages WHERE archive = $1 AND NOT excluded ORDER BY ts DESC, seq DESC LIMIT 51`, []any{a}},
	}
	ts := make([][]time.Duration, len(variants))
	var buf []byte
	for b.Loop() {
		for i, v := range variants {
			t := time.Now()
			rows, err := ps.pool.Query(ctx, v.sql, v.args...)
			if err != nil {
				b.Fatal(err)
			}
			buf = buf[:0]
			k := 0
			for rows.Next() {
				k++
				for _, v := range rows.RawValues() {
					buf = append(buf, v...)
				}
			}
			rows.Close()
			ts[i] = append(ts[i], time.Since(t))
			if rows.Err() != nil || (i > 0 && k != 51) {
				b.Fatal(rows.Err(), k, v.name)
			}
		}
	}
	for i, v := range variants {
		b.ReportMetric(float64(median(ts[i]).Nanoseconds())/1e3, v.name+"-µs")
	}
}
