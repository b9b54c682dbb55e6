package server

import (
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/labstack/echo/v4"
)

// The OpenAPI document is valid OpenAPI 3, and documents every /v1/ route
// the server has, with every method.
func TestOpenAPIDocument(t *testing.T) {
	doc, err := openapi3.NewLoader().LoadFromData(openAPIDoc)
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(t.Context()); err != nil {
		t.Fatalf("invalid OpenAPI document: %v", err)
	}
	e := echo.New()
	(&Server{}).routeUploadAPI(e.Group("/v1"))
	routes := 0
	for _, r := range e.Routes() {
		path := r.Path
		if path[len(path)-1] == '*' {
			path = path[:len(path)-1] + "{key}"
		}
		item := doc.Paths.Find(path)
		if item == nil || item.GetOperation(r.Method) == nil {
			t.Errorf("%s %s is not documented", r.Method, path)
		}
		routes++
	}
	if routes < 6 {
		t.Errorf("only %d routes found", routes)
	}
}
