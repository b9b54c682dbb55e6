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
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), x.r.o.Timeout)
	defer cancel()
	_, err := x.r.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.SAdd(ctx, VariantPrefix+source, name)
		p.Expire(ctx, VariantPrefix+source, variantIndexTTL)
		return nil
	})
	if err != nil {
		x.r.fail(opSet, VariantPrefix+source, err)
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
