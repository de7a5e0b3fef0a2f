package plan

import (
	"testing"

	"github.com/ferryserve/ferry/internal/api"
)

func TestPredictPath(t *testing.T) {
	for _, tc := range []struct{ doc, want string }{
		{`{apiVersion: serving.kserve.io/v1beta1, kind: InferenceService, metadata: {name: iris},
  spec: {predictor: {sklearn: {storageUri: "gs://b/m"}}}}`, "/v1/models/iris:predict"},
		{`{apiVersion: serving.kserve.io/v1beta1, kind: InferenceService, metadata: {name: iris},
  spec: {predictor: {xgboost: {protocolVersion: v2, storageUri: "gs://b/m"}}}}`, "/v2/models/iris/infer"},
		{`{apiVersion: serving.kserve.io/v1beta1, kind: InferenceService, metadata: {name: iris},
  spec: {predictor: {model: {modelFormat: {name: triton}, protocolVersion: grpc-v2, storageUri: "gs://b/m"}}}}`, "/v2/models/iris/infer"},
	} {
		objs, err := api.Load([]byte(tc.doc))
		if err != nil {
			t.Fatal(err)
		}
		isvc := objs[0].(*api.InferenceService)
		isvc.Default()
		if got := PredictPath(isvc); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.doc, got, tc.want)
		}
	}
}
