package operator

import (
	"errors"
	"fmt"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

func TestRetryStale(t *testing.T) {
	gr := schema.GroupResource{Group: "serving.kserve.io", Resource: "inferenceservices"}
	conflict := apierrors.NewConflict(gr, "x", errors.New("the object has been modified"))
	other := errors.New("no space left")
	tests := []struct {
		name    string
		res     reconcile.Result
		err     error
		wantRes reconcile.Result
		wantErr error
	}{
		{"success", reconcile.Result{}, nil, reconcile.Result{}, nil},
		{"success with a requeue", reconcile.Result{RequeueAfter: 3}, nil, reconcile.Result{RequeueAfter: 3}, nil},
		{"conflict", reconcile.Result{}, conflict, reconcile.Result{RequeueAfter: staleRetry}, nil},
		{"wrapped conflict", reconcile.Result{}, fmt.Errorf("update status: %w", conflict), reconcile.Result{RequeueAfter: staleRetry}, nil},
		{"already exists", reconcile.Result{}, apierrors.NewAlreadyExists(gr, "x"), reconcile.Result{RequeueAfter: staleRetry}, nil},
		// Not found may be lasting (a missing secret): it stays an error.
		{"not found", reconcile.Result{}, apierrors.NewNotFound(gr, "x"), reconcile.Result{}, apierrors.NewNotFound(gr, "x")},
		{"other error", reconcile.Result{}, other, reconcile.Result{}, other},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s staleRetries
			res, err := s.retry(t.Context(), reconcile.Request{}, tt.res, tt.err)
			if res != tt.wantRes {
				t.Errorf("result = %+v, want %+v", res, tt.wantRes)
			}
			if (err == nil) != (tt.wantErr == nil) || (err != nil && err.Error() != tt.wantErr.Error()) {
				t.Errorf("error = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

// TestStaleRetriesBackOff: one object that keeps conflicting is retried
// ever later (doubling), others are not slowed by it, and a clean
// reconcile forgets its count.
func TestStaleRetriesBackOff(t *testing.T) {
	gr := schema.GroupResource{Group: "serving.kserve.io", Resource: "inferenceservices"}
	conflict := apierrors.NewConflict(gr, "x", errors.New("the object has been modified"))
	a := reconcile.Request{NamespacedName: types.NamespacedName{Namespace: "ns", Name: "a"}}
	b := reconcile.Request{NamespacedName: types.NamespacedName{Namespace: "ns", Name: "b"}}
	var s staleRetries
	after := func(req reconcile.Request, err error) time.Duration {
		t.Helper()
		res, e := s.retry(t.Context(), req, reconcile.Result{}, err)
		if e != nil {
			t.Fatalf("retry returned %v", e)
		}
		return res.RequeueAfter
	}
	for i, want := range []time.Duration{staleRetry, 2 * staleRetry, 4 * staleRetry, 8 * staleRetry} {
		if got := after(a, conflict); got != want {
			t.Errorf("conflict %d of a: after %v, want %v", i+1, got, want)
		}
	}
	if got := after(b, conflict); got != staleRetry {
		t.Errorf("first conflict of b: after %v, want %v (a's count is a's)", got, staleRetry)
	}
	for range 20 {
		after(a, conflict)
	}
	if got := after(a, conflict); got != maxStaleRetry {
		t.Errorf("a after many conflicts: after %v, want the cap %v", got, maxStaleRetry)
	}
	if got := after(a, nil); got != 0 {
		t.Errorf("clean reconcile: requeue after %v", got)
	}
	if got := after(a, conflict); got != staleRetry {
		t.Errorf("conflict after a clean reconcile: after %v, want %v", got, staleRetry)
	}
}
