// Command v2server is a minimal external model server of the tests' own
// making that speaks the V2 REST protocol on $PORT: it is ready at once and
// answers every infer with the sum of its first input's data, after
// $SLEEP_MS milliseconds (to hold requests in flight).
package main

import (
	"encoding/json"
	"net/http"
	"os"
	"strconv"
	"time"
)

func main() {
	http.HandleFunc("GET /v2/health/ready", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(`{"ready":true}`))
	})
	http.HandleFunc("POST /v2/models/{name}/infer", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Inputs []struct {
				Data []float64 `json:"data"`
			} `json:"inputs"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || len(req.Inputs) == 0 {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"error":"want inputs with flat FP64 data"}`))
			return
		}
		if ms, err := strconv.Atoi(os.Getenv("SLEEP_MS")); err == nil {
			time.Sleep(time.Duration(ms) * time.Millisecond)
		}
		sum := 0.0
		for _, v := range req.Inputs[0].Data {
			sum += v
		}
		_ = json.NewEncoder(w).Encode(map[string]any{
			"model_name": r.PathValue("name"),
			"outputs":    []any{map[string]any{"name": "sum", "datatype": "FP64", "shape": []int{1}, "data": []float64{sum}}},
		})
	})
	_ = http.ListenAndServe("127.0.0.1:"+os.Getenv("PORT"), nil)
}
