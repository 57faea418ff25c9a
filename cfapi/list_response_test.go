package cfapi

import (
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestWriteListMatchesMarshal(t *testing.T) {
	type item struct {
		GUID string            `json:"guid"`
		Tags map[string]string `json:"tags"`
		Note *string           `json:"note"`
	}
	note := "<b>&</b>\nsecond line"
	many := make([]item, 3000)
	for i := range many {
		many[i] = item{GUID: strings.Repeat("g", 36), Tags: map[string]string{"b": "2", "a": "1"}}
	}
	pagination := paginationJSON{TotalResults: 2, TotalPages: 1, First: link{Href: "http://x/v3/things?page=1"}}

	tests := []struct {
		name string
		list listJSON
	}{
		{"two resources", listJSON{Pagination: pagination, Resources: []item{{GUID: "a", Note: &note}, {GUID: "b"}}}},
		{"empty resources", listJSON{Pagination: pagination, Resources: []item{}}},
		{"nil resources", listJSON{Pagination: pagination, Resources: []item(nil)}},
		{"included", listJSON{Pagination: pagination, Resources: []item{{GUID: "a"}},
			Included: map[string]any{"spaces": []item{{GUID: "s"}}, "organizations": []item{}}}},
		{"empty included", listJSON{Pagination: pagination, Resources: []item{}, Included: map[string]any{}}},
		{"larger than the buffer", listJSON{Pagination: pagination, Resources: many}},
		{"pointer receiver marshaler", listJSON{Pagination: pagination, Resources: []pointerMarshaler{{"a"}, {"b"}}}},
		{"apps through appendJSON", listJSON{Pagination: pagination, Resources: appJSONSamples()}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want, err := json.Marshal(tt.list)
			if err != nil {
				t.Fatal(err)
			}
			rec := httptest.NewRecorder()
			writeList(rec, http.StatusOK, tt.list)

			if rec.Code != http.StatusOK {
				t.Errorf("status = %d, want 200", rec.Code)
			}
			if got := rec.Header().Get("Content-Type"); got != "application/json; charset=utf-8" {
				t.Errorf("Content-Type = %q", got)
			}
			if diff := cmp.Diff(string(want)+"\n", rec.Body.String()); diff != "" {
				t.Errorf("body differs from json.Marshal (-want +got):\n%s", diff)
			}
		})
	}
}

// pointerMarshaler encodes itself only through a pointer, which json.Marshal
// uses for the addressable elements of a slice.
type pointerMarshaler struct{ name string }

func (p *pointerMarshaler) MarshalJSON() ([]byte, error) {
	return json.Marshal("named " + p.name)
}

func TestWriteListEncodingError(t *testing.T) {
	type sample struct {
		Value float64 `json:"value"`
	}

	t.Run("before the first flush", func(t *testing.T) {
		rec := httptest.NewRecorder()
		writeList(rec, http.StatusOK, listJSON{Resources: []sample{{1}, {math.NaN()}}})
		if rec.Code != http.StatusInternalServerError {
			t.Errorf("status = %d, want 500", rec.Code)
		}
		if rec.Body.Len() != 0 {
			t.Errorf("body = %q, want none", rec.Body.String())
		}
	})

	t.Run("after the first flush", func(t *testing.T) {
		resources := make([]sample, 20000)
		resources[len(resources)-1].Value = math.NaN()
		rec := httptest.NewRecorder()
		defer func() {
			if v := recover(); v != http.ErrAbortHandler {
				t.Errorf("recovered %v, want http.ErrAbortHandler", v)
			}
			if rec.Code != http.StatusOK || rec.Body.Len() == 0 {
				t.Errorf("status %d with %d body bytes, want the status and part of the body sent", rec.Code, rec.Body.Len())
			}
		}()
		writeList(rec, http.StatusOK, listJSON{Resources: resources})
	})
}
