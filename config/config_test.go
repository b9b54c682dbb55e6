package config

import (
	"bytes"
	"errors"
	"flag"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestLoad(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		args    []string
		check   func(Config) bool
		wantErr string
	}{
		{"defaults", nil, nil, func(c Config) bool {
			return c.Addr == ":8080" && c.Storage == "file://./data" && !c.S3PathStyle &&
				c.MaxSourcePixels == 50_000_000 && c.MaxSourceBytes == 50<<20 && c.MaxFrames == 100 &&
				c.QualityJPEG == 82 && c.QualityWebP == 80 && c.QualityAVIF == 60 &&
				c.BrowserTTL == 24*time.Hour && c.CDNTTL == 365*24*time.Hour &&
				c.StorageTimeout == 10*time.Second && c.LogLevel == slog.LevelInfo
		}, ""},
		{"environment", map[string]string{
			"PRISM_ADDR": "127.0.0.1:9000", "PRISM_STORAGE": "s3://b/p", "PRISM_S3_PATH_STYLE": "true",
			"PRISM_MAX_SOURCE_PIXELS": "1000", "PRISM_QUALITY_AVIF": "45", "PRISM_CDN_TTL": "1h", "PRISM_LOG_LEVEL": "debug",
		}, nil, func(c Config) bool {
			return c.Addr == "127.0.0.1:9000" && c.Storage == "s3://b/p" && c.S3PathStyle &&
				c.MaxSourcePixels == 1000 && c.QualityAVIF == 45 && c.CDNTTL == time.Hour && c.LogLevel == slog.LevelDebug
		}, ""},
		{"flags win over environment", map[string]string{"PRISM_ADDR": ":1"}, []string{"-addr", ":2", "-max-frames=7"},
			func(c Config) bool { return c.Addr == ":2" && c.MaxFrames == 7 }, ""},
		{"bad number", map[string]string{"PRISM_MAX_FRAMES": "lots"}, nil, nil, "max-frames"},
		{"bad duration", map[string]string{"PRISM_STORAGE_TIMEOUT": "soon"}, nil, nil, "storage-timeout"},
		{"quality out of range", nil, []string{"-quality-jpeg", "0"}, nil, "quality-jpeg must be from 1 to 100"},
		{"efforts", map[string]string{"PRISM_AVIF_EFFORT": "4", "PRISM_WEBP_EFFORT": "0"}, nil,
			func(c Config) bool { return c.AVIFEffort == 4 && c.WebPEffort == 0 }, ""},
		{"AVIF effort 0", map[string]string{"PRISM_AVIF_EFFORT": "0"}, nil, nil, "avif-effort must be from 1 to 9"},
		{"WebP effort out of range", nil, []string{"-webp-effort", "7"}, nil, "webp-effort must be from 0 to 6"},
		{"limit not positive", map[string]string{"PRISM_MAX_SOURCE_BYTES": "-1"}, nil, nil, "max-source-bytes must be positive"},
		{"unknown flag", nil, []string{"-colour", "red"}, nil, "colour"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			c, err := Load(tt.args, &bytes.Buffer{})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(c) {
				t.Errorf("loaded %+v", c)
			}
		})
	}
}

func TestHelpListsEverySetting(t *testing.T) {
	var out bytes.Buffer
	if _, err := Load([]string{"--help"}, &out); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("err = %v, want flag.ErrHelp", err)
	}
	fs := flag.NewFlagSet("", flag.ContinueOnError)
	(&Config{}).flags(fs)
	fs.VisitAll(func(f *flag.Flag) {
		if !strings.Contains(out.String(), "-"+f.Name+" / "+EnvName(f.Name)) {
			t.Errorf("help does not list -%s / %s:\n%s", f.Name, EnvName(f.Name), out.String())
		}
	})
}
