package vcs_test

import (
	"encoding/base64"
	"strconv"
)

func itoa(i int) string { return strconv.Itoa(i) }

func basic(user, token string) string {
	return base64.StdEncoding.EncodeToString([]byte(user + ":" + token))
}
