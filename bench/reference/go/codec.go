package main

import "fmt"

// rawCodec passes message bytes through untouched: requests are received
// into a *[]byte and responses are sent from a []byte.
type rawCodec struct{}

// Marshal returns the bytes of a []byte or *[]byte message.
func (rawCodec) Marshal(v any) ([]byte, error) {
	switch message := v.(type) {
	case []byte:
		return message, nil
	case *[]byte:
		return *message, nil
	default:
		return nil, fmt.Errorf("rawCodec: cannot marshal %T", v)
	}
}

// Unmarshal copies data into a *[]byte message.
func (rawCodec) Unmarshal(data []byte, v any) error {
	target, ok := v.(*[]byte)
	if !ok {
		return fmt.Errorf("rawCodec: cannot unmarshal into %T", v)
	}
	*target = append((*target)[:0], data...)
	return nil
}

// Name is the content-subtype the codec is registered under ("proto", so
// that clients sending application/grpc+proto are served by it).
func (rawCodec) Name() string { return "proto" }
