//! The product-service's OpenAPI document, served at `/openapi.json`.

use serde_json::{Value, json};

fn problem(description: &str) -> Value {
    json!({"description": description, "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}})
}

pub fn spec() -> Value {
    let product = json!({"application/json": {"schema": {"$ref": "#/components/schemas/Product"}}});
    let seller = json!({"application/json": {"schema": {"$ref": "#/components/schemas/Seller"}}});
    let id = json!([{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}]);
    json!({
        "openapi": "3.1.0",
        "info": {"title": "evilent product-service", "version": env!("CARGO_PKG_VERSION"),
                 "description": "Products and seller profiles. Emits ProductCreated, ProductUpdated, ProductDeleted, ProductStockUpdated on product-events; keeps seller profiles from user-events."},
        "security": [{"bearer": []}],
        "paths": {
            "/product": {
                "post": {"summary": "Create a product owned by the caller",
                    "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ProductInput"}}}},
                    "responses": {"201": {"description": "Created", "content": product}, "400": problem("Malformed body"), "409": problem("Seller deleted"), "422": problem("Invalid fields")}},
                "get": {"summary": "List products (filters userId, categoryId, isActive; limit 1-100, cursor)",
                    "parameters": [{"name": "userId", "in": "query", "schema": {"type": "string"}}, {"name": "categoryId", "in": "query", "schema": {"type": "string"}},
                                   {"name": "isActive", "in": "query", "schema": {"type": "boolean"}}, {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100}},
                                   {"name": "cursor", "in": "query", "schema": {"type": "string"}}],
                    "responses": {"200": {"description": "{items, nextCursor}"}, "422": problem("Invalid filters")}}},
            "/product/{id}": {
                "get": {"summary": "A product", "parameters": id, "responses": {"200": {"description": "The product", "content": product}, "404": problem("Unknown")}},
                "patch": {"summary": "Change name, description, price, categoryId, isActive (owner or admin)", "parameters": id,
                    "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ProductInput"}}}},
                    "responses": {"200": {"description": "The product", "content": product}, "403": problem("Not the owner"), "404": problem("Unknown")}},
                "delete": {"summary": "Delete a product (owner or admin)", "parameters": id, "responses": {"204": {"description": "Deleted"}, "403": problem("Not the owner"), "404": problem("Unknown")}}},
            "/product/{id}/stock": {"patch": {"summary": "Change stock by {\"delta\": n} or to {\"stock\": n}; never below 0", "parameters": id,
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "properties": {"delta": {"type": "integer"}, "stock": {"type": "integer", "minimum": 0}}}}}},
                "responses": {"200": {"description": "The product", "content": product}, "409": problem("Stock would fall below 0"), "422": problem("Neither or both fields")}}},
            "/product/{id}/seller": {"get": {"summary": "The product owner's seller profile", "parameters": id, "responses": {"200": {"description": "Seller", "content": seller}, "404": problem("Unknown")}}},
            "/seller/{userId}": {"get": {"summary": "A seller profile (appears after the user's UserProfileCreated)",
                "parameters": [{"name": "userId", "in": "path", "required": true, "schema": {"type": "string"}}],
                "responses": {"200": {"description": "Seller", "content": seller}, "404": problem("Not (yet) known")}}},
            "/health": {"get": {"summary": "Liveness", "security": [], "responses": {"200": {"description": "ok"}}}},
            "/ready": {"get": {"summary": "Readiness", "security": [], "responses": {"200": {"description": "ready"}}}}
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
            "schemas": {
                "ProductInput": {"type": "object", "properties": {"name": {"type": "string", "maxLength": 200}, "description": {"type": "string"},
                    "price": {"type": "number", "multipleOf": 0.01, "minimum": 0}, "categoryId": {"type": "string"}, "stock": {"type": "integer", "minimum": 0}, "isActive": {"type": "boolean"}}},
                "Product": {"type": "object", "properties": {"id": {"type": "string"}, "userId": {"type": "string"}, "name": {"type": "string"}, "description": {"type": ["string", "null"]},
                    "price": {"type": "number"}, "categoryId": {"type": "string"}, "stock": {"type": "integer"}, "isActive": {"type": "boolean"},
                    "createdAt": {"type": "string", "format": "date-time"}, "updatedAt": {"type": "string", "format": "date-time"}}},
                "Seller": {"type": "object", "properties": {"userId": {"type": "string"}, "email": {"type": "string"}, "firstName": {"type": "string"}, "lastName": {"type": "string"}, "isActive": {"type": "boolean"}}},
                "Problem": {"type": "object", "properties": {"type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"}, "detail": {"type": "string"},
                    "errors": {"type": "array", "items": {"type": "object", "properties": {"field": {"type": "string"}, "message": {"type": "string"}}}}}}
            }
        }
    })
}
