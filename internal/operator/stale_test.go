package operator

import (
	"errors"
	"fmt"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
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
			res, err := retryStale(t.Context(), tt.res, tt.err)
			if res != tt.wantRes {
				t.Errorf("result = %+v, want %+v", res, tt.wantRes)
			}
			if (err == nil) != (tt.wantErr == nil) || (err != nil && err.Error() != tt.wantErr.Error()) {
				t.Errorf("error = %v, want %v", err, tt.wantErr)
			}
		})
	}
}
