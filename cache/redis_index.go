package cache

import (
	"context"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"
)

// VariantPrefix starts the Redis key of each original's variant index:
// prism:var:<storage key>, a set of the derived objects stored for it.
const VariantPrefix = "prism:var:"

// variantIndexTTL lets the index of an original nobody asks for any more
// expire; every Add renews it.
const variantIndexTTL = 30 * 24 * time.Hour

// VariantIndex returns the index of the derived store, kept in this Redis
// with the same timeouts and failure accounting as the metadata.
func (r *Redis) VariantIndex() VariantIndex { return redisIndex{r} }

type redisIndex struct{ r *Redis }

func (x redisIndex) Has(ctx context.Context, source, name string) (present, known bool) {
	ctx, cancel := context.WithTimeout(ctx, x.r.o.Timeout)
	defer cancel()
	present, err := x.r.rdb.SIsMember(ctx, VariantPrefix+source, name).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		x.r.fail(opGet, VariantPrefix+source, err)
		return false, false
	}
	return present, true
}

func (x redisIndex) Add(ctx context.Context, source, name string) {
	x.r.addToSet(ctx, VariantPrefix+source, name, variantIndexTTL)
}

// addToSet adds member to the set at key and renews the set's lifetime to
// ttl, beyond the caller's cancellation.
func (r *Redis) addToSet(ctx context.Context, key, member string, ttl time.Duration) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.o.Timeout)
	defer cancel()
	_, err := r.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.SAdd(ctx, key, member)
		p.Expire(ctx, key, ttl)
		return nil
	})
	if err != nil {
		r.fail(opSet, key, err)
	}
}

// Drop forgets every variant of source. Should Redis miss it, nothing stale
// is served: variant names change with the original's ETag.
func (x redisIndex) Drop(ctx context.Context, source string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), x.r.o.Timeout)
	defer cancel()
	if err := x.r.rdb.Del(ctx, VariantPrefix+source).Err(); err != nil {
		x.r.fail(opDelete, VariantPrefix+source, err)
	}
}

// MarkPrefix starts the Redis key of each watermark's users:
// prism:marked:<storage key>, a set of the originals drawn with it.
const MarkPrefix = "prism:marked:"

// markIndexTTL outlasts what a CDN keeps of a variant (a year at most), so
// that a watermark changed long after its variants were rendered still
// purges them; every Add renews it.
const markIndexTTL = 400 * 24 * time.Hour

// MarkIndex returns the watermark index, kept in this Redis with the same
// timeouts and failure accounting as the metadata.
func (r *Redis) MarkIndex() MarkIndex { return redisMarks{r} }

type redisMarks struct{ r *Redis }

func (x redisMarks) Add(ctx context.Context, mark, source string) {
	x.r.addToSet(ctx, MarkPrefix+mark, source, markIndexTTL)
}

// Take reads and deletes the set in one transaction, so that a source
// added meanwhile is kept for the next change.
func (x redisMarks) Take(ctx context.Context, mark string) []string {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), x.r.o.Timeout)
	defer cancel()
	var members *redis.StringSliceCmd
	_, err := x.r.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		members = p.SMembers(ctx, MarkPrefix+mark)
		p.Del(ctx, MarkPrefix+mark)
		return nil
	})
	if err != nil {
		x.r.fail(opGet, MarkPrefix+mark, err)
		return nil
	}
	return members.Val()
}
