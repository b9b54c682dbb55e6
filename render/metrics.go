package render

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/prism-image/prism"
	"github.com/prism-image/prism/imaging"
)

// Stages is where a render's time went. libvips runs decoding, resizing
// and encoding as one demand-driven pipeline, so most pixel work is done
// while the encoder pulls pixels: Decode is reading the source's header
// and opening it (an SVG is drawn here), Process is setting up the
// operations (those that need the whole image, such as an EXIF rotation,
// compute its pixels here), Encode is the encoder and what it pulls.
type Stages struct {
	Queue   time.Duration // waiting for a worker and for the memory budget
	Fetch   time.Duration // reading the source from storage
	Decode  time.Duration
	Process time.Duration
	Encode  time.Duration
}

// stageNames label prism_render_duration_seconds, in Stages' order.
var stageNames = []string{"queue", "fetch", "decode", "process", "encode"}

func (s Stages) durations() []time.Duration {
	return []time.Duration{s.Queue, s.Fetch, s.Decode, s.Process, s.Encode}
}

// Rejection reasons of prism_render_rejected_total.
const (
	reasonQueueFull = "queue_full"
	reasonTimeout   = "timeout"
	reasonTooLarge  = "too_large"
)

// metrics are the image work's Prometheus series.
type metrics struct {
	stages      *prometheus.HistogramVec
	rejected    *prometheus.CounterVec
	sourceBytes prometheus.Histogram
	outputBytes *prometheus.CounterVec
	runs        prometheus.Counter
}

// newMetrics registers the image work's metrics with reg (nowhere when it
// is nil), with the gate's gauges, and a series for every stage, output
// format and reason from the start.
func newMetrics(reg prometheus.Registerer, g *gate) *metrics {
	m := &metrics{
		stages: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "prism_render_duration_seconds",
			Help: "Time of each stage of a render that produced an image, by stage and output format.",
			// A stage takes from a tenth of a millisecond (a small PNG's
			// decode) to the 30 s timeout (a queue under overload).
			Buckets: []float64{.0001, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"stage", "format"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "prism_render_rejected_total",
			Help: "Requests for image work refused: queue_full (429), timeout (503, the work did not finish in time), too_large (422, a source or output over the limits).",
		}, []string{"reason"}),
		sourceBytes: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "prism_source_bytes",
			Help:    "Bytes of each original read to be rendered.",
			Buckets: prometheus.ExponentialBuckets(16<<10, 4, 8), // 16 KiB to 256 MiB
		}),
		outputBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "prism_output_bytes_total",
			Help: "Bytes of the images renders produced, by output format (cache hits are not renders).",
		}, []string{"format"}),
		runs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "prism_pipeline_runs_total",
			Help: "Images rendered by the libvips pipeline: with the variant caches and merging in front, one per distinct variant a process renders.",
		}),
	}
	if reg == nil {
		return m
	}
	reg.MustRegister(m.stages, m.rejected, m.sourceBytes, m.outputBytes, m.runs,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "prism_render_in_flight",
			Help: "Image work running on a worker now.",
		}, func() float64 { return float64(g.running.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "prism_render_queued",
			Help: "Image work waiting for a worker now.",
		}, func() float64 {
			// Read apart, the two may disagree for an instant.
			return float64(max(0, g.inside.Load()-g.running.Load()))
		}),
	)
	for _, f := range imaging.OutputFormats {
		for _, s := range stageNames {
			m.stages.WithLabelValues(s, string(f))
		}
		m.outputBytes.WithLabelValues(string(f))
	}
	for _, r := range []string{reasonQueueFull, reasonTimeout, reasonTooLarge} {
		m.rejected.WithLabelValues(r)
	}
	return m
}

// rendered records a render that produced out.
func (m *metrics) rendered(f imaging.Format, s Stages, out int) {
	for i, d := range s.durations() {
		m.stages.WithLabelValues(stageNames[i], string(f)).Observe(d.Seconds())
	}
	m.outputBytes.WithLabelValues(string(f)).Add(float64(out))
}

// refused counts a request that err refused, when it is one of the
// rejections, and returns err. A request whose client left (ctx canceled)
// was not refused.
func (m *metrics) refused(ctx context.Context, err error) error {
	if err == nil || errors.Is(ctx.Err(), context.Canceled) {
		return err
	}
	if reason := rejection(err); reason != "" {
		m.rejected.WithLabelValues(reason).Inc()
	}
	return err
}

func rejection(err error) string {
	var pe *prism.Error
	if !errors.As(err, &pe) {
		return ""
	}
	switch pe.Code {
	case prism.CodeBusy:
		return reasonQueueFull
	case prism.CodeUnavailable:
		if errors.Is(err, errShutdown) {
			return ""
		}
		return reasonTimeout
	case prism.CodeTooLarge, prism.CodeOutputTooLarge:
		return reasonTooLarge
	}
	return ""
}
