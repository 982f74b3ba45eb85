// Package metrics exposes a node's state to Prometheus
// (prometheus/client_golang): queue depths, bounds and drops, sync gaps,
// commit lag, members, and the data plane's traffic counters. Values are
// read at scrape time from the components, so nothing is double-booked.
package metrics

import (
	"context"
	"net/http"
	"sort"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/patinadb/patina"
)

// Collector reads a node's status and counters at scrape time.
type Collector struct {
	// Status returns the node status. Required.
	Status func(ctx context.Context) patina.NodeStatus
	// Counters returns monotonic counters by name (e.g. the gossip
	// layer's messages and bytes sent), exported as patina_<name>_total.
	Counters func() map[string]uint64
}

var (
	queueLen     = prometheus.NewDesc("patina_queue_length", "Items waiting in a bounded queue.", []string{"queue"}, nil)
	queueCap     = prometheus.NewDesc("patina_queue_capacity", "Bound of a queue; overflow drops the oldest and sync repairs it.", []string{"queue"}, nil)
	queueDropped = prometheus.NewDesc("patina_queue_dropped_total", "Items dropped by a full queue.", []string{"queue"}, nil)
	gapVersions  = prometheus.NewDesc("patina_sync_gap_versions", "Versions known to exist and not yet received.", nil, nil)
	partials     = prometheus.NewDesc("patina_sync_partial_versions", "Versions received in part.", nil, nil)
	deferred     = prometheus.NewDesc("patina_deferred_changes", "Changes waiting for schema this node lacks.", nil, nil)
	lagP99       = prometheus.NewDesc("patina_commit_lag_p99_seconds", "p99 of origin commit to local apply over the last two minutes.", nil, nil)
	members      = prometheus.NewDesc("patina_members", "Cluster members by state (this node included).", []string{"state"}, nil)
	head         = prometheus.NewDesc("patina_actor_head_version", "Highest version applied, per origin actor.", []string{"actor"}, nil)
)

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{queueLen, queueCap, queueDropped, gapVersions, partials, deferred, lagP99, members, head} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	st := c.Status(context.Background())
	for name, q := range st.Queues {
		ch <- prometheus.MustNewConstMetric(queueLen, prometheus.GaugeValue, float64(q.Len), name)
		ch <- prometheus.MustNewConstMetric(queueCap, prometheus.GaugeValue, float64(q.Cap), name)
		ch <- prometheus.MustNewConstMetric(queueDropped, prometheus.CounterValue, float64(q.Dropped), name)
	}
	ch <- prometheus.MustNewConstMetric(gapVersions, prometheus.GaugeValue, float64(st.GapVersions))
	ch <- prometheus.MustNewConstMetric(partials, prometheus.GaugeValue, float64(st.Partials))
	ch <- prometheus.MustNewConstMetric(deferred, prometheus.GaugeValue, float64(st.Deferred))
	ch <- prometheus.MustNewConstMetric(lagP99, prometheus.GaugeValue, st.LagP99Seconds)
	byState := map[string]int{}
	for _, m := range st.Members {
		byState[m.State.String()]++
	}
	for s, n := range byState {
		ch <- prometheus.MustNewConstMetric(members, prometheus.GaugeValue, float64(n), s)
	}
	for a, v := range st.Heads {
		ch <- prometheus.MustNewConstMetric(head, prometheus.GaugeValue, float64(v), a.String())
	}
	if c.Counters != nil {
		counters := c.Counters()
		names := make([]string, 0, len(counters))
		for n := range counters {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			d := prometheus.NewDesc("patina_"+n+"_total", "Data-plane counter "+n+".", nil, nil)
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(counters[n]))
		}
	}
}

// Handler returns the /metrics handler with the node's collector and Go
// runtime metrics.
func Handler(c *Collector) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(c, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}
