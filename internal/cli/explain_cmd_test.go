package cli

import (
	"slices"
	"strings"
	"testing"
)

func TestKServeExplainerArgs(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
		err  string
	}{
		{ // KServe's controller order, config sorted, string values
			args: []string{"--model_name", "iris", "--http_port", "8080", "--predictor_host", "iris-predictor.default", "--storage_uri", "/mnt/models", "AnchorTabular", "--beam_size", "2", "--threshold", "0.9"},
			want: "--grpc-port 0 --model-name iris --http-port 8080 --predictor-host iris-predictor.default --explainer-data /mnt/models --explainer-type AnchorTabular --explainer-config beam_size=2 --explainer-config threshold=0.9",
		},
		{ // ferry up's custom containers: the globals after the type; serve flags before it
			args: []string{"--host", "127.0.0.1", "--log-format=json", "KernelShap", "--stop_on_first", "--seed=3", "--model_name", "m", "--predictor_host", "h:1", "--http_port", "9"},
			want: "--grpc-port 0 --host 127.0.0.1 --log-format json --explainer-type KernelShap --explainer-config stop_on_first=true --explainer-config seed=3 --model-name m --predictor-host h:1 --http-port 9",
		},
		{args: []string{"--model_name", "m"}, err: "give the explainer type"},
		{args: []string{"TreeShap", "extra"}, err: `unexpected argument "extra"`},
		{args: []string{"TreeShap", "--model_name"}, err: "--model_name needs a value"},
	} {
		got, err := kserveExplainerArgs(tc.args)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%v: error %v, want %q", tc.args, err, tc.err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, strings.Fields(tc.want)) {
			t.Errorf("%v:\n got %v (%v)\nwant %s", tc.args, got, err, tc.want)
		}
	}
}
