package plan

import "github.com/ferryserve/ferry/internal/api"

// PredictPath is where an InferenceGraph's step that names service s
// sends its request, as KServe's graph controller resolves it: the V1
// predict or V2 infer path of the model named like the service, by the
// predictor's protocol. `ferry up` and the operator's routers both use it.
func PredictPath(s *api.InferenceService) string {
	_, _, protocol, _ := s.PredictorFormat()
	if protocol == api.ProtocolV2 || protocol == api.ProtocolGRPCV2 {
		return "/v2/models/" + s.Metadata.Name + "/infer"
	}
	return "/v1/models/" + s.Metadata.Name + ":predict"
}
