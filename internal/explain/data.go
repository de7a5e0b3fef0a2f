package explain

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// DataFile is the name of the training-data document inside a directory
// given as --explainer-data (or an explainer's storageUri).
const DataFile = "explainer.json"

// Data is what explainers need from training: feature names, the category
// names of categorical features (keyed by column), and rows (a background
// sample for KernelShap, training data for AnchorTabular).
type Data struct {
	FeatureNames []string         `json:"feature_names"`
	CategoryMap  map[int][]string `json:"category_map"`
	Rows         [][]float64      `json:"-"`
}

// dataDoc is the JSON document: rows may hold null for missing values.
type dataDoc struct {
	FeatureNames []string            `json:"feature_names"`
	CategoryMap  map[string][]string `json:"category_map"`
	Data         [][]*float64        `json:"data"`
}

// LoadData reads path, a JSON document or a directory holding
// explainer.json.
func LoadData(path string) (*Data, error) {
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		dill := filepath.Join(path, "explainer.dill")
		path = filepath.Join(path, DataFile)
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			if _, err := os.Stat(dill); err == nil {
				return nil, errDill
			}
		}
	}
	if strings.HasSuffix(path, ".dill") {
		return nil, errDill
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: training data: %w", ErrConfig, err)
	}
	return ParseData(b)
}

// errDill answers a storageUri that holds only Alibi's pickled explainer.
var errDill = fmt.Errorf("%w: training data: explainer.dill is Alibi's explainer pickled with dill, which holds Python code Ferry does not run; "+
	"put %s beside it: {\"feature_names\": [...], \"category_map\": {\"column\": [names]}, \"data\": [[row], ...]} "+
	"with the training sample the explainer was fitted on (docs/explain.md shows how to write it from Python)", ErrConfig, DataFile)

// ParseData decodes the training-data document.
func ParseData(b []byte) (*Data, error) {
	var doc dataDoc
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("%w: training data: %w", ErrConfig, err)
	}
	d := &Data{FeatureNames: doc.FeatureNames, CategoryMap: map[int][]string{}}
	for k, names := range doc.CategoryMap {
		f, err := strconv.Atoi(k)
		if err != nil || f < 0 {
			return nil, fmt.Errorf("%w: training data: category_map key %q is not a column index", ErrConfig, k)
		}
		d.CategoryMap[f] = names
	}
	for i, r := range doc.Data {
		if len(r) != len(doc.Data[0]) {
			return nil, fmt.Errorf("%w: training data: data row %d has %d values, row 0 has %d", ErrConfig, i, len(r), len(doc.Data[0]))
		}
		row := make([]float64, len(r))
		for j, v := range r {
			row[j] = math.NaN()
			if v != nil {
				row[j] = *v
			}
		}
		d.Rows = append(d.Rows, row)
	}
	if len(d.FeatureNames) > 0 && len(d.Rows) > 0 && len(d.FeatureNames) != len(d.Rows[0]) {
		return nil, fmt.Errorf("%w: training data: feature_names has %d names for %d columns", ErrConfig, len(d.FeatureNames), len(d.Rows[0]))
	}
	return d, nil
}
