package v2

import (
	"bytes"
	"fmt"
	"strconv"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/ferryserve/ferry/internal/protocol"
)

// The client side of the V2 JSON codec: encoding requests and decoding
// responses, for components that call other V2 servers (the agent's
// batcher, proxies).

// EncodeRequest appends the JSON form of req (data inline, flat) to dst.
func EncodeRequest(dst []byte, req *InferRequest) []byte {
	dst = append(dst, '{')
	if req.ID != "" {
		dst = append(dst, `"id":`...)
		dst = appendString(dst, req.ID)
		dst = append(dst, ',')
	}
	if len(req.Parameters) > 0 {
		dst = append(dst, `"parameters":`...)
		dst = appendParameters(dst, req.Parameters)
		dst = append(dst, ',')
	}
	dst = append(dst, `"inputs":[`...)
	for i, t := range req.Inputs {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"name":`...)
		dst = appendString(dst, t.Name)
		dst = append(dst, `,"datatype":"`...)
		dst = append(dst, t.Datatype.String()...)
		dst = append(dst, `","shape":[`...)
		for j, d := range t.Shape {
			if j > 0 {
				dst = append(dst, ',')
			}
			dst = strconv.AppendInt(dst, d, 10)
		}
		dst = append(dst, `],"data":`...)
		dst = AppendData(dst, t)
		dst = append(dst, '}')
	}
	dst = append(dst, ']')
	if len(req.Outputs) > 0 {
		dst = append(dst, `,"outputs":[`...)
		for i, o := range req.Outputs {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, `{"name":`...)
			dst = appendString(dst, o.Name)
			dst = append(dst, '}')
		}
		dst = append(dst, ']')
	}
	return append(dst, '}')
}

// DecodeResponse decodes a V2 inference response with inline (JSON) data.
func DecodeResponse(body []byte) (*InferResponse, error) {
	dec := jsontext.NewDecoder(bytes.NewReader(body))
	resp := &InferResponse{}
	if err := expectDelim(dec, '{', "response"); err != nil {
		return nil, err
	}
	for dec.PeekKind() != '}' {
		key, err := readKey(dec)
		if err != nil {
			return nil, err
		}
		switch key {
		case "model_name":
			if resp.ModelName, err = readString(dec, "model_name"); err != nil {
				return nil, err
			}
		case "model_version":
			if resp.ModelVersion, err = readString(dec, "model_version"); err != nil {
				return nil, err
			}
		case "id":
			if resp.ID, err = readString(dec, "id"); err != nil {
				return nil, err
			}
		case "parameters":
			if resp.Parameters, err = readParameters(dec, "parameters"); err != nil {
				return nil, err
			}
		case "outputs":
			if err := expectDelim(dec, '[', "outputs"); err != nil {
				return nil, err
			}
			for dec.PeekKind() != ']' {
				t, size, err := decodeInput(dec, len(resp.Outputs), len(body), nil)
				if err != nil {
					return nil, err
				}
				if size >= 0 {
					return nil, fmt.Errorf("%w: output %q uses binary data; request JSON outputs", protocol.ErrBadRequest, t.Name)
				}
				resp.Outputs = append(resp.Outputs, t)
			}
			if _, err := dec.ReadToken(); err != nil {
				return nil, syntaxErr(err)
			}
		default:
			if err := dec.SkipValue(); err != nil {
				return nil, syntaxErr(err)
			}
		}
	}
	return resp, nil
}
