package main

import (
	"bytes"
	"encoding/json"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
)

// redactedText replaces every secret the example prints.
const redactedText = "[redacted]"

// redactedJSON renders message as one line of protobuf JSON with the proto
// field names (e.g. "source_address"), unset optional fields omitted and every
// field marked `debug_redact` in the schema replaced by "[redacted]".
func redactedJSON(message proto.Message) ([]byte, error) {
	copied := proto.Clone(message)
	redact(copied.ProtoReflect())
	encoded, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(copied)
	if err != nil {
		return nil, err
	}
	// protojson varies its whitespace on purpose; compact it to one stable line.
	var line bytes.Buffer
	if err := json.Compact(&line, encoded); err != nil {
		return nil, err
	}
	return line.Bytes(), nil
}

// redact overwrites, in place, the populated fields of message (and of its
// nested messages) that the schema marks with `debug_redact = true`.
func redact(message protoreflect.Message) {
	message.Range(func(field protoreflect.FieldDescriptor, value protoreflect.Value) bool {
		switch {
		case isDebugRedacted(field) && field.Kind() == protoreflect.StringKind && !field.IsList() && !field.IsMap():
			message.Set(field, protoreflect.ValueOfString(redactedText))
		case field.IsList() && field.Message() != nil:
			list := value.List()
			for i := range list.Len() {
				redact(list.Get(i).Message())
			}
		case field.IsMap() && field.MapValue().Message() != nil:
			value.Map().Range(func(_ protoreflect.MapKey, entry protoreflect.Value) bool {
				redact(entry.Message())
				return true
			})
		case field.Message() != nil && !field.IsMap():
			redact(value.Message())
		}
		return true
	})
}

func isDebugRedacted(field protoreflect.FieldDescriptor) bool {
	options, ok := field.Options().(*descriptorpb.FieldOptions)
	return ok && options.GetDebugRedact()
}
