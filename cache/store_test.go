package cache

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/prism-image/prism"
)

// Lifetimes of the behaviour table: short, yet far enough apart that a
// loaded machine does not blur them.
const (
	testTTL        = 1500 * time.Millisecond
	testMissingTTL = 300 * time.Millisecond
)

// stores are the MetadataStore implementations the behaviour table runs
// against: every one must behave the same.
var stores = []struct {
	name string
	new  func(t *testing.T, o Options) MetadataStore
}{
	{"memory", func(t *testing.T, o Options) MetadataStore {
		m := NewMemory(1000, o)
		t.Cleanup(func() { m.Close() })
		return m
	}},
	{"redis", func(t *testing.T, o Options) MetadataStore {
		flushShared(t)
		return newTestRedis(t, shared.URL(), o, defaultMaxPending, defaultFlushEvery)
	}},
}

// step is one call of a behaviour case. Set steps store meta(key, etag);
// get steps expect want, and for a Hit, metadata with etag.
type step struct {
	op    string // set, missing, delete, get, sleep
	key   string
	etag  string
	want  Lookup
	sleep time.Duration
}

func set(key, etag string) step  { return step{op: "set", key: key, etag: etag} }
func setMissing(key string) step { return step{op: "missing", key: key} }
func del(key string) step        { return step{op: "delete", key: key} }
func hit(key, etag string) step  { return step{op: "get", key: key, want: Hit, etag: etag} }
func miss(key string) step       { return step{op: "get", key: key, want: Miss} }
func missing(key string) step    { return step{op: "get", key: key, want: Missing} }
func sleep(d time.Duration) step { return step{op: "sleep", sleep: d} }
func setNoKey() step             { return step{op: "set", key: "", etag: "x"} }

func TestStoreBehaviour(t *testing.T) {
	cases := []struct {
		name  string
		steps []step
	}{
		{"unknown key is a miss", []step{miss("uploads/cat.jpg")}},
		{"set then get", []step{set("uploads/cat.jpg", "v1"), hit("uploads/cat.jpg", "v1")}},
		{"set replaces", []step{set("a.jpg", "v1"), set("a.jpg", "v2"), hit("a.jpg", "v2")}},
		{"keys are apart", []step{set("a.jpg", "va"), set("b.jpg", "vb"), hit("a.jpg", "va"), hit("b.jpg", "vb"), miss("c.jpg")}},
		{"delete", []step{set("a.jpg", "v1"), set("b.jpg", "v1"), del("a.jpg"), miss("a.jpg"), hit("b.jpg", "v1")}},
		{"delete of an unknown key", []step{del("nope.jpg"), miss("nope.jpg")}},
		{"delete drops a negative entry", []step{setMissing("a.jpg"), del("a.jpg"), miss("a.jpg")}},
		{"set missing", []step{setMissing("gone.jpg"), missing("gone.jpg"), miss("other.jpg")}},
		{"set after set missing", []step{setMissing("a.jpg"), set("a.jpg", "v1"), hit("a.jpg", "v1")}},
		{"set missing after set", []step{set("a.jpg", "v1"), setMissing("a.jpg"), missing("a.jpg")}},
		{"metadata without a key is not stored", []step{setNoKey(), miss("")}},
		{"keys with odd characters", []step{set("dir/ünï cødé/*?[x].jpg", "v1"), hit("dir/ünï cødé/*?[x].jpg", "v1"), miss("dir/ünï cødé/x.jpg")}},
		{"entries expire after TTL", []step{
			set("a.jpg", "v1"), hit("a.jpg", "v1"),
			sleep(testTTL + 400*time.Millisecond), miss("a.jpg"),
		}},
		{"negative entries expire after MissingTTL", []step{
			setMissing("a.jpg"), missing("a.jpg"),
			sleep(testMissingTTL + 300*time.Millisecond), miss("a.jpg"),
		}},
		{"set after set missing lives for TTL", []step{
			setMissing("a.jpg"), set("a.jpg", "v1"),
			sleep(testMissingTTL + 300*time.Millisecond), hit("a.jpg", "v1"),
		}},
		{"set missing after set lives for MissingTTL", []step{
			set("a.jpg", "v1"), setMissing("a.jpg"),
			sleep(testMissingTTL + 300*time.Millisecond), miss("a.jpg"),
		}},
	}
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					s := st.new(t, Options{TTL: testTTL, MissingTTL: testMissingTTL, Timeout: time.Second})
					ctx := context.Background()
					for i, sp := range tc.steps {
						switch sp.op {
						case "set":
							s.Set(ctx, meta(sp.key, sp.etag))
						case "missing":
							s.SetMissing(ctx, sp.key)
						case "delete":
							s.Delete(ctx, sp.key)
						case "sleep":
							time.Sleep(sp.sleep)
						case "get":
							got, l := s.Get(ctx, sp.key)
							if l != sp.want {
								t.Fatalf("step %d: Get(%q) = %v, want %v", i, sp.key, l, sp.want)
							}
							var want prism.Metadata
							if sp.want == Hit {
								want = stored(meta(sp.key, sp.etag))
							}
							if !reflect.DeepEqual(got, want) {
								t.Fatalf("step %d: Get(%q) = %+v, want %+v", i, sp.key, got, want)
							}
						}
					}
				})
			}
		})
	}
}

// TestStoreConcurrent hammers each store from several goroutines, for the
// race detector, and checks that each key ends as its last write left it.
func TestStoreConcurrent(t *testing.T) {
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			s := st.new(t, Options{Timeout: 2 * time.Second})
			ctx := context.Background()
			var wg sync.WaitGroup
			for g := range 8 {
				wg.Go(func() {
					for i := range 200 {
						key := fmt.Sprintf("g%d/%d.jpg", g, i%10)
						switch i % 4 {
						case 0:
							s.Set(ctx, meta(key, fmt.Sprint(i)))
						case 1:
							s.Get(ctx, key)
						case 2:
							s.SetMissing(ctx, key)
						case 3:
							s.Delete(ctx, key)
						}
					}
					key := fmt.Sprintf("g%d/last.jpg", g)
					s.Set(ctx, meta(key, "last"))
				})
			}
			wg.Wait()
			for g := range 8 {
				key := fmt.Sprintf("g%d/last.jpg", g)
				if got, l := s.Get(ctx, key); l != Hit || got.ETag != "last" {
					t.Errorf("Get(%q) = %v %q, want hit last", key, l, got.ETag)
				}
				// i = 199 was a Delete of key i%10 = 9.
				if _, l := s.Get(ctx, fmt.Sprintf("g%d/9.jpg", g)); l != Miss {
					t.Errorf("g%d/9.jpg: %v after its last Delete, want miss", g, l)
				}
			}
		})
	}
}
