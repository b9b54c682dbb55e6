package cache

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/prism-image/prism"
	"github.com/prism-image/prism/internal/safe"
)

// MetaPrefix starts the Redis key of every metadata entry:
// prism:meta:<storage key>.
const MetaPrefix = "prism:meta:"

// missingJSON is the value of a negative entry.
var missingJSON = []byte(`{"missing":true}`)

const (
	// defaultMaxPending bounds the keys remembered for invalidation while
	// Redis fails; past it, every prism:meta:* key is flushed instead.
	defaultMaxPending = 10_000
	// defaultFlushEvery is how often the background goroutine retries the
	// pending invalidations.
	defaultFlushEvery = time.Second
	delBatch          = 500  // keys per DEL
	scanCount         = 1000 // COUNT hint per SCAN
)

// Redis is a MetadataStore in Redis. Entries live under readable keys,
// prism:meta:<key>: the JSON of the metadata with Options.TTL, or
// {"missing":true} with Options.MissingTTL for a negative entry.
//
// Redis being down or slow never fails a caller: every call is bounded by
// Options.Timeout, and a failed one is logged, counted and answered as a
// Miss. The client reconnects by itself once Redis is back.
//
// Nor does it make the cache serve stale entries. A Set or Delete that
// fails may leave an outdated entry in Redis, to be read once Redis answers
// again; so the keys of failed writes are remembered as pending, and while
// any are, Get answers Miss for every key and the pending keys are deleted
// from Redis first (by each call, unless a flush is under way, and every
// second in the background). Once they are, Redis is used again. Should too
// many keys pend, every prism:meta:* key is deleted instead. The guard is
// per process: another process sharing the Redis knows nothing of it.
type Redis struct {
	rdb *redis.Client
	o   Options

	maxPending int

	// gen counts failed writes; a Get that sees it change while it waits
	// for Redis answers Miss. dirty says whether anything is pending.
	gen   atomic.Uint64
	dirty atomic.Bool
	// flushing is held by whoever is deleting the pending keys, so that
	// callers do not pile up on a Redis that is down.
	flushing atomic.Bool

	mu      sync.Mutex
	pending map[string]uint64 // key → gen of its latest failed write
	all     bool              // pending overflowed: delete every prism:meta:* key
	allGen  uint64            // gen of the latest failed write while all is set

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
	closeErr  error
}

// NewRedis returns a Redis store for the server at url
// (redis://[user:password@]host:port/db, or rediss:// for TLS). It does not
// contact the server, so it succeeds while Redis is down; it fails only on a
// malformed url. Close releases it.
func NewRedis(url string, o Options) (*Redis, error) {
	return newRedis(url, o, defaultMaxPending, defaultFlushEvery)
}

func newRedis(rawURL string, o Options, maxPending int, flushEvery time.Duration) (*Redis, error) {
	opt, err := redis.ParseURL(rawURL)
	if err != nil {
		// A *url.Error quotes the URL, password included.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("cache: invalid Redis URL: %w", err)
	}
	o = o.withDefaults()
	// Let the per-call context deadline bound reads and writes on the
	// connection too, not only the wait for one.
	opt.ContextTimeoutEnabled = true
	// One retry is enough to get past a connection that died with a
	// restarted Redis; more, with their back-off, only make every call
	// last the whole timeout while Redis refuses connections.
	if opt.MaxRetries == 0 { // not set by the URL's max_retries
		opt.MaxRetries = 1
	}
	rdb := redis.NewClient(opt)
	if o.Metrics != nil {
		rdb.AddHook(timing{o.Metrics})
	}
	r := &Redis{
		rdb:        rdb,
		o:          o,
		maxPending: maxPending,
		pending:    make(map[string]uint64),
		stop:       make(chan struct{}),
		done:       make(chan struct{}),
	}
	go r.flushLoop(flushEvery)
	return r, nil
}

// Close stops the background flush and closes the connections.
func (r *Redis) Close() error {
	r.closeOnce.Do(func() {
		close(r.stop)
		<-r.done
		r.closeErr = r.rdb.Close()
	})
	return r.closeErr
}

// Ping reports whether Redis answers, within Options.Timeout. Nothing needs
// it; it is there for start-up logs and health checks.
func (r *Redis) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, r.o.Timeout)
	defer cancel()
	err := r.rdb.Ping(ctx).Err()
	if err != nil {
		r.o.Metrics.redisError(opPing)
	}
	return err
}

// Get implements MetadataStore.
func (r *Redis) Get(ctx context.Context, key string) (prism.Metadata, Lookup) {
	caller := ctx
	ctx, cancel := context.WithTimeout(ctx, r.o.Timeout)
	defer cancel()
	g := r.gen.Load()
	if r.dirty.Load() {
		if clean, _ := r.flush(ctx); !clean {
			r.o.Metrics.lookup(layerMetadata, resultError)
			return prism.Metadata{}, Miss
		}
		g = r.gen.Load()
		if r.dirty.Load() {
			r.o.Metrics.lookup(layerMetadata, resultError)
			return prism.Metadata{}, Miss
		}
	}
	b, err := r.rdb.Get(ctx, MetaPrefix+key).Bytes()
	if err != nil {
		// A caller that gave up is no Redis failure: a miss to it.
		if !errors.Is(err, redis.Nil) && caller.Err() == nil {
			r.fail(opGet, key, err)
			r.o.Metrics.lookup(layerMetadata, resultError)
		} else {
			r.o.Metrics.lookup(layerMetadata, resultMiss)
		}
		return prism.Metadata{}, Miss
	}
	if r.gen.Load() != g {
		// A write failed while we waited: what we read may be what it
		// failed to replace.
		r.o.Metrics.lookup(layerMetadata, resultError)
		return prism.Metadata{}, Miss
	}
	var v struct {
		Missing bool `json:"missing"`
		prism.Metadata
	}
	if err := json.Unmarshal(b, &v); err != nil {
		r.o.Logger.Warn("redis cache: undecodable entry", "op", opGet, "key", key, "err", err)
		r.o.Metrics.lookup(layerMetadata, resultError)
		return prism.Metadata{}, Miss
	}
	r.o.Metrics.lookup(layerMetadata, resultHit)
	if v.Missing {
		return prism.Metadata{}, Missing
	}
	return v.Metadata, Hit
}

// Set implements MetadataStore. It is not cut short by the cancellation of
// ctx, only by Options.Timeout.
func (r *Redis) Set(ctx context.Context, m prism.Metadata) {
	if m.Key == "" {
		return
	}
	m.URL = "" // filled in when answering, never stored
	b, err := json.Marshal(m)
	if err != nil { // cannot happen with Metadata's field types
		r.o.Logger.Error("redis cache: encoding metadata", "key", m.Key, "err", err)
		return
	}
	r.write(ctx, opSet, m.Key, func(ctx context.Context) error {
		return r.rdb.Set(ctx, MetaPrefix+m.Key, b, r.o.TTL).Err()
	})
}

// SetMissing implements MetadataStore. It is not cut short by the
// cancellation of ctx, only by Options.Timeout.
func (r *Redis) SetMissing(ctx context.Context, key string) {
	r.write(ctx, opSet, key, func(ctx context.Context) error {
		return r.rdb.Set(ctx, MetaPrefix+key, missingJSON, r.o.MissingTTL).Err()
	})
}

// Delete implements MetadataStore. It is not cut short by the cancellation
// of ctx, only by Options.Timeout: an invalidation is worth finishing.
func (r *Redis) Delete(ctx context.Context, key string) {
	r.write(ctx, opDelete, key, func(ctx context.Context) error {
		return r.rdb.Del(ctx, MetaPrefix+key).Err()
	})
}

// write runs do, a write of key, after the pending deletes, and remembers
// key as pending when it fails. Writes are safe to attempt while keys pend:
// they store what is current, or nothing.
func (r *Redis) write(ctx context.Context, op, key string, do func(context.Context) error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.o.Timeout)
	defer cancel()
	if r.dirty.Load() {
		if _, failed := r.flush(ctx); failed {
			// Redis is down, and the time is spent: do not try again.
			r.markPending(key)
			return
		}
	}
	if err := do(ctx); err != nil {
		r.fail(op, key, err)
		r.markPending(key)
	}
}

// fail logs and counts a failed Redis call.
func (r *Redis) fail(op, key string, err error) {
	r.o.Metrics.redisError(op)
	r.o.Logger.Warn("redis cache call failed", "op", op, "key", key, "err", err)
}

// markPending remembers that Redis may hold an outdated entry for key.
func (r *Redis) markPending(key string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.dirty.Store(true)
	g := r.gen.Add(1)
	if r.all {
		r.allGen = g
		return
	}
	if _, ok := r.pending[key]; !ok && len(r.pending) >= r.maxPending {
		r.o.Logger.Warn("redis cache: too many keys pending invalidation; every "+MetaPrefix+"* key will be deleted once Redis answers",
			"pending", len(r.pending))
		r.all, r.allGen = true, g
		clear(r.pending)
		return
	}
	r.pending[key] = g
}

// flush deletes the pending keys from Redis within ctx, unless another
// flush is under way or every key must go (which only the background loop
// does). clean says whether nothing is pending any more; failed whether
// Redis failed the deletes.
func (r *Redis) flush(ctx context.Context) (clean, failed bool) {
	if !r.flushing.CompareAndSwap(false, true) {
		return false, false
	}
	defer r.flushing.Store(false)
	r.mu.Lock()
	if r.all {
		r.mu.Unlock()
		return false, false
	}
	snap := maps.Clone(r.pending)
	r.mu.Unlock()

	if len(snap) > 0 {
		keys := slices.Collect(maps.Keys(snap))
		if err := r.del(ctx, keys); err != nil {
			if !errors.Is(ctx.Err(), context.Canceled) { // else the caller gave up
				r.fail(opDelete, pendingLabel(keys), err)
			}
			return false, true
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for k, g := range snap {
		if r.pending[k] == g { // not failed again meanwhile
			delete(r.pending, k)
		}
	}
	if !r.settle() {
		return false, false
	}
	if len(snap) > 0 {
		r.o.Logger.Info("redis cache: pending invalidations done; using Redis again", "keys", len(snap))
	}
	return true, false
}

// settle clears dirty when nothing is pending, and reports whether it did.
// r.mu must be held.
func (r *Redis) settle() bool {
	if len(r.pending) == 0 && !r.all {
		r.dirty.Store(false)
		return true
	}
	return false
}

// pendingLabel names pending keys in a log line.
func pendingLabel(keys []string) string {
	if len(keys) == 1 {
		return keys[0]
	}
	return slices.Min(keys) + " and " + strconv.Itoa(len(keys)-1) + " more pending keys"
}

// del deletes the entries of keys, in batches sent in one round trip.
func (r *Redis) del(ctx context.Context, keys []string) error {
	rkeys := make([]string, len(keys))
	for i, k := range keys {
		rkeys[i] = MetaPrefix + k
	}
	if len(rkeys) <= delBatch {
		return r.rdb.Del(ctx, rkeys...).Err()
	}
	_, err := r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for batch := range slices.Chunk(rkeys, delBatch) {
			p.Del(ctx, batch...)
		}
		return nil
	})
	return err
}

// flushLoop retries the pending deletes every interval until Close, so
// that recovery does not wait for traffic.
func (r *Redis) flushLoop(every time.Duration) {
	defer close(r.done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-r.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
		}
		if !r.dirty.Load() {
			continue
		}
		r.mu.Lock()
		all := r.all
		r.mu.Unlock()
		// A panic skips this round, never the process or the loop.
		_ = safe.Do(r.o.Logger, "Redis replay", func() {
			if all {
				r.flushAll(ctx)
			} else {
				c, cancelCall := context.WithTimeout(ctx, r.o.Timeout)
				defer cancelCall()
				r.flush(c)
			}
		})
	}
}

// flushAll deletes every prism:meta:* key, with SCAN and DEL, each call
// within Options.Timeout.
func (r *Redis) flushAll(ctx context.Context) {
	if !r.flushing.CompareAndSwap(false, true) {
		return
	}
	defer r.flushing.Store(false)
	r.mu.Lock()
	g := r.allGen
	r.mu.Unlock()

	var cursor uint64
	for {
		c, cancel := context.WithTimeout(ctx, r.o.Timeout)
		keys, next, err := r.rdb.Scan(c, cursor, MetaPrefix+"*", scanCount).Result()
		if err == nil && len(keys) > 0 {
			err = r.rdb.Del(c, keys...).Err()
		}
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				r.fail(opDelete, MetaPrefix+"*", err)
			}
			return
		}
		if cursor = next; cursor == 0 {
			break
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.allGen == g { // no write failed since the scan began
		r.all = false
		r.settle()
		r.o.Logger.Info("redis cache: every " + MetaPrefix + "* key deleted; using Redis again")
	}
}
