package cfapi

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"reflect"
)

// writeList writes a list response as json.Marshal would, but encodes one
// resource at a time through a 64 KiB buffer. Encoding a page of a thousand
// apps at once builds a buffer of several megabytes, which the garbage
// collector frees and the next request allocates and zeroes again. The
// status and headers go out with the first 64 KiB, so an encoding error
// before then is still a 500. After then the connection is aborted, so the
// client cannot mistake a cut-off list for a complete one.
func writeList(w http.ResponseWriter, status int, list listJSON) {
	resources := reflect.ValueOf(list.Resources)
	if resources.Kind() != reflect.Slice || resources.IsNil() {
		writeJSON(w, status, list)
		return
	}

	out := &headerOnWrite{w: w, status: status}
	buf := bufio.NewWriterSize(out, 64<<10)
	encoder := json.NewEncoder(dropNewlines{buf})
	err := writeListTo(buf, encoder.Encode, list, resources)
	if err == nil {
		err = buf.Flush()
	}
	switch {
	case err == nil:
	case !out.sent:
		w.WriteHeader(http.StatusInternalServerError)
	default:
		panic(http.ErrAbortHandler)
	}
}

// writeListTo writes the fields of list in listJSON's order. A resource
// that is a jsonAppender encodes itself, and encode encodes every other
// value.
func writeListTo(buf *bufio.Writer, encode func(any) error, list listJSON, resources reflect.Value) error {
	buf.WriteString(`{"pagination":`)
	if err := encode(list.Pagination); err != nil {
		return err
	}
	buf.WriteString(`,"resources":[`)
	var scratch []byte
	for i := range resources.Len() {
		if i > 0 {
			buf.WriteByte(',')
		}
		// A pointer to the element, as json.Marshal of the whole list
		// would see it, so methods with pointer receivers apply alike.
		resource := resources.Index(i).Addr().Interface()
		if appender, ok := resource.(jsonAppender); ok {
			var err error
			if scratch, err = appender.appendJSON(scratch[:0]); err != nil {
				return err
			}
			buf.Write(scratch)
			continue
		}
		if err := encode(resource); err != nil {
			return err
		}
	}
	buf.WriteByte(']')
	if len(list.Included) > 0 {
		buf.WriteString(`,"included":`)
		if err := encode(list.Included); err != nil {
			return err
		}
	}
	_, err := buf.WriteString("}\n")
	return err
}

// jsonAppender is a resource that appends its own JSON encoding, the same
// bytes json.Marshal produces, faster than encoding/json.
type jsonAppender interface {
	appendJSON(b []byte) ([]byte, error)
}

// dropNewlines removes the newline json.Encoder writes after each value.
// Compact JSON has no other raw newline, because strings escape theirs.
type dropNewlines struct{ w *bufio.Writer }

func (d dropNewlines) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			i = len(p)
		}
		if _, err := d.w.Write(p[:i]); err != nil {
			return 0, err
		}
		p = p[min(i+1, len(p)):]
	}
	return n, nil
}

// headerOnWrite sends the JSON content type and the status with the first
// bytes of the body.
type headerOnWrite struct {
	w      http.ResponseWriter
	status int
	sent   bool
}

func (h *headerOnWrite) Write(p []byte) (int, error) {
	if !h.sent {
		h.sent = true
		h.w.Header().Set("Content-Type", "application/json; charset=utf-8")
		h.w.WriteHeader(h.status)
	}
	return h.w.Write(p)
}
