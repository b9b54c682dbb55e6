package app

import (
	"io"
	"log/slog"
	"net/http"
	"runtime"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/prism-image/prism/emf"
	"github.com/prism-image/prism/imaging"
	"github.com/prism-image/prism/server"
)

// newRegistry is the Prometheus registry of one Prism: the Go and process
// collectors, prism_build_info and libvips' memory; every package adds its
// own series to it.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	build := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "prism_build_info",
		Help: "Always 1: the version of Prism (its Go module version, or its VCS revision) and of what it was built with.",
	}, []string{"version", "go_version", "libvips_version"})
	build.WithLabelValues(version(), runtime.Version(), imaging.Version()).Set(1)
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		build,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "prism_libvips_memory_bytes",
			Help: "Memory libvips holds now for pixels and buffers, by its own count.",
		}, func() float64 { return float64(imaging.TrackedMemory()) }),
	)
	return reg
}

// Version is Prism's version, set at build time (make build passes git
// describe's); empty, the module's version or VCS revision stands in.
var Version string

// version is Version, else the main module's version, else its VCS
// revision.
func version() string {
	if Version != "" {
		return Version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" {
			return s.Value
		}
	}
	return "(devel)"
}

// metricsHandler serves reg in Prometheus' text and protobuf formats.
func metricsHandler(reg *prometheus.Registry, log *slog.Logger) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		Registry: reg, // promhttp_metric_handler_errors_total
	})
}

// The EMF dimension sets: requests are counted for all of Prism, by route,
// by route and cache layer, and by route and status; their time and error
// rates likewise but for the status, which the rates already tell; render
// stages and output bytes for all of Prism and by route. Each set a metric
// is published under is a CloudWatch metric of its own, billed as one.
var (
	requestSets = [][]string{{"Service"}, {"Service", "Route"}, {"Service", "Route", "Cache"}, {"Service", "Route", "Code"}}
	timeSets    = [][]string{{"Service"}, {"Service", "Route"}, {"Service", "Route", "Cache"}}
	renderSets  = [][]string{{"Service"}, {"Service", "Route"}}
)

// emfObserver writes one CloudWatch EMF line to out for every request:
// requests, their duration, their 5xx and 429 answers (0 or 1, so that
// the average is the rate), and for renders, the stages and output bytes.
func emfObserver(out io.Writer, namespace string, log *slog.Logger) func(server.RequestRecord) {
	return func(rec server.RequestRecord) {
		flag := func(b bool) float64 {
			if b {
				return 1
			}
			return 0
		}
		ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
		groups := []emf.Group{
			{DimensionSets: requestSets, Metrics: []emf.Metric{{Name: "Requests", Unit: emf.Count, Value: 1}}},
			{DimensionSets: timeSets, Metrics: []emf.Metric{
				{Name: "Duration", Unit: emf.Milliseconds, Value: ms(rec.Duration)},
				{Name: "Status5xx", Unit: emf.Count, Value: flag(rec.Status >= 500)},
				{Name: "Status429", Unit: emf.Count, Value: flag(rec.Status == http.StatusTooManyRequests)},
			}},
		}
		var work []emf.Metric
		if rec.OutputBytes > 0 {
			work = append(work, emf.Metric{Name: "OutputBytes", Unit: emf.Bytes, Value: float64(rec.OutputBytes)})
		}
		if rec.Rendered {
			work = append(work,
				emf.Metric{Name: "QueueTime", Unit: emf.Milliseconds, Value: ms(rec.Stages.Queue)},
				emf.Metric{Name: "FetchTime", Unit: emf.Milliseconds, Value: ms(rec.Stages.Fetch)},
				emf.Metric{Name: "DecodeTime", Unit: emf.Milliseconds, Value: ms(rec.Stages.Decode)},
				emf.Metric{Name: "ProcessTime", Unit: emf.Milliseconds, Value: ms(rec.Stages.Process)},
				emf.Metric{Name: "EncodeTime", Unit: emf.Milliseconds, Value: ms(rec.Stages.Encode)})
		}
		if work != nil {
			groups = append(groups, emf.Group{DimensionSets: renderSets, Metrics: work})
		}
		err := emf.Write(out, emf.Event{
			Namespace: namespace, Time: time.Now(), Groups: groups,
			Dimensions: []emf.Field{{Name: "Service", Value: "prism"}, {Name: "Route", Value: rec.Route}, {Name: "Cache", Value: rec.Cache}, {Name: "Code", Value: strconv.Itoa(rec.Status)}},
			Properties: []emf.Field{{Name: "request_id", Value: rec.ID}, {Name: "method", Value: rec.Method}},
		})
		if err != nil {
			log.Error("writing CloudWatch metrics", "err", err)
		}
	}
}
