package prism

import "time"

// Metadata describes one original: what storage says of it (size, ETag,
// modification time) and what its pixels say (dimensions, format, frames,
// alpha, colour, a placeholder). It is computed once, when the original is
// uploaded or first used, and cached so the hot path rarely touches storage.
type Metadata struct {
	Key           string    `json:"key"`
	URL           string    `json:"url,omitempty"` // filled in when answering, never stored
	Width         int       `json:"width"`         // upright
	Height        int       `json:"height"`        // upright, one frame
	Format        string    `json:"format"`
	ContentType   string    `json:"content_type"`
	Bytes         int64     `json:"bytes"`
	ETag          string    `json:"etag"`
	LastModified  time.Time `json:"last_modified"`
	Orientation   int       `json:"orientation"`
	Frames        int       `json:"frames"`
	HasAlpha      bool      `json:"has_alpha"`
	ColorSpace    string    `json:"color_space"`
	DominantColor string    `json:"dominant_color"` // #rrggbb
	BlurHash      string    `json:"blurhash"`
}

// Pixels is the pixel count the source limit applies to: every frame.
func (m Metadata) Pixels() int64 { return int64(m.Width) * int64(m.Height) * int64(max(1, m.Frames)) }
