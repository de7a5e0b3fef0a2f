package detect

import (
	"encoding/json"

	"github.com/ferryserve/ferry/internal/detect/drift"
	"github.com/ferryserve/ferry/internal/detect/outlier"
)

// The reply bodies follow alibi-detect's: {"data": {...}, "meta": {...}}.

type meta struct {
	Name         string `json:"name"`
	DetectorType string `json:"detector_type"`
	DataType     string `json:"data_type"`
	Version      string `json:"version,omitempty"`
}

type driftData struct {
	IsDrift   int       `json:"is_drift"`
	Distance  []float64 `json:"distance"`
	PVal      []float64 `json:"p_val"`
	Threshold any       `json:"threshold"`
}

type outlierData struct {
	IsOutlier     []int     `json:"is_outlier"`
	InstanceScore []float64 `json:"instance_score"`
	FeatureScore  []float64 `json:"feature_score"`
	Threshold     float64   `json:"threshold"`
}

func driftBody(r drift.Result, version string) []byte {
	d := driftData{Distance: r.Distance, PVal: r.PVal, Threshold: r.Threshold}
	if r.IsDrift {
		d.IsDrift = 1
	}
	if len(r.Thresholds) > 0 {
		d.Threshold = r.Thresholds
	}
	b, _ := json.Marshal(map[string]any{"data": d, "meta": meta{Name: r.Name, DetectorType: "drift", DataType: "tabular", Version: version}})
	return b
}

func outlierBody(r outlier.Result, version string) []byte {
	d := outlierData{IsOutlier: make([]int, len(r.IsOutlier)), InstanceScore: r.InstanceScore, Threshold: r.Threshold}
	for i, o := range r.IsOutlier {
		if o {
			d.IsOutlier[i] = 1
		}
	}
	b, _ := json.Marshal(map[string]any{"data": d, "meta": meta{Name: r.Name, DetectorType: "outlier", DataType: "tabular", Version: version}})
	return b
}
