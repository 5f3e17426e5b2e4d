// The module loadtest/generated-client.sh compiles the oapi-codegen client in: it pins
// the client's runtime (go.sum verifies it).
module flashsale/generated-client

go 1.26.0

require (
	github.com/oapi-codegen/runtime v1.9.0
	go.yaml.in/yaml/v3 v3.0.6
)

require (
	github.com/apapsch/go-jsonmerge/v2 v2.0.0 // indirect
	github.com/google/uuid v1.6.0 // indirect
)
