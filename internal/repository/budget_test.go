package repository_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/ferryserve/ferry/internal/repository"
	"github.com/ferryserve/ferry/internal/runtime"
	"github.com/ferryserve/ferry/internal/runtime/runtimetest"
)

// budgetLoader records the decode budget each load was given.
type budgetLoader struct {
	next repository.Loader
	seen []int64
}

func (l *budgetLoader) Load(ctx context.Context, dir, format string) (runtime.Model, string, error) {
	l.seen = append(l.seen, runtime.DecodeBudget(ctx))
	return l.next.Load(ctx, dir, format)
}

// A load's decode budget is the configured one, lowered to what the
// memory limit leaves free, so a file's decode peak stays inside the limit.
func TestDecodeBudgetFollowsMemoryLimit(t *testing.T) {
	const mb = 1 << 20
	root := t.TempDir()
	for _, n := range []string{"m1", "m2"} {
		p := filepath.Join(root, n)
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := runtimetest.WriteBallastModel(p, 1, 8*mb); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		name         string
		cfg          repository.Config
		first, after func(int64) bool
	}{
		{"no limit, no budget", repository.Config{},
			func(b int64) bool { return b == 0 }, func(b int64) bool { return b == 0 }},
		{"budget only", repository.Config{DecodeBudget: 5 * mb},
			func(b int64) bool { return b == 5*mb }, func(b int64) bool { return b == 5*mb }},
		{"limit lowers the budget as models load", repository.Config{MemoryLimit: 40 * mb, DecodeBudget: 100 * mb},
			func(b int64) bool { return b == 40*mb }, func(b int64) bool { return b > 30*mb && b < 33*mb }},
		{"eviction keeps the whole limit", repository.Config{MemoryLimit: 40 * mb, EvictLRU: true},
			func(b int64) bool { return b == 40*mb }, func(b int64) bool { return b == 40*mb }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l := &budgetLoader{next: runtime.NewRegistry(runtimetest.Format)}
			tc.cfg.Loader = l
			repo := repository.New(tc.cfg)
			defer repo.Close()
			for _, n := range []string{"m1", "m2"} {
				repo.Add(repository.Source{Name: n, Dir: filepath.Join(root, n)})
				if err := repo.Load(t.Context(), n); err != nil {
					t.Fatal(err)
				}
			}
			if !tc.first(l.seen[0]) || !tc.after(l.seen[1]) {
				t.Fatalf("budgets %v", l.seen)
			}
		})
	}
}
