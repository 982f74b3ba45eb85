package sqlite

import "github.com/patinadb/patina"

// PackPK encodes primary-key values (see patina.PackPK).
func PackPK(vals []patina.Value) []byte { return patina.PackPK(vals) }

// UnpackPK decodes a packed primary key (see patina.UnpackPK).
func UnpackPK(b []byte) ([]patina.Value, error) { return patina.UnpackPK(b) }
