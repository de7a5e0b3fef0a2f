// Command transformer is a test transformer in KServe's style: it takes
// --model_name, --predictor_host and --http_port, scales every V1 instance
// value by 1 (a pass-through "preprocess"), forwards to the predictor and
// marks the response so tests can see it went through the transformer.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"strconv"
)

func main() {
	model := flag.String("model_name", "", "model name")
	host := flag.String("predictor_host", "", "predictor host:port")
	port := flag.Int("http_port", 8080, "port")
	flag.Parse()
	http.HandleFunc("POST /v1/models/{nv}", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		resp, err := http.Post("http://"+*host+"/v1/models/"+*model+":predict", "application/json", bytes.NewReader(body))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		var out map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		out["transformer"] = *model
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(resp.StatusCode)
		_ = json.NewEncoder(w).Encode(out)
	})
	_ = http.ListenAndServe("127.0.0.1:"+strconv.Itoa(*port), nil)
}
