//! The user-service's OpenAPI document, served at `/openapi.json`.

use serde_json::{Value, json};

fn problem(description: &str) -> Value {
    json!({"description": description, "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}})
}

pub fn spec() -> Value {
    let user_ref =
        json!({"content": {"application/json": {"schema": {"$ref": "#/components/schemas/User"}}}});
    let id = json!([{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}]);
    json!({
        "openapi": "3.1.0",
        "info": {"title": "evilent user-service", "version": env!("CARGO_PKG_VERSION"),
                 "description": "Users and their statistics. Emits UserCreated, UserProfileCreated, UserUpdated, UserDeleted on the user-events topic; keeps productCount from product-events."},
        "security": [{"bearer": []}],
        "paths": {
            "/user": {"post": {"summary": "Create the caller's user (id = token sub)",
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/UserInput"}}}},
                "responses": {"201": {"description": "Created", "content": user_ref["content"]}, "400": problem("Malformed body"),
                              "401": problem("No or bad token"), "409": problem("User exists"), "422": problem("Invalid fields")}}},
            "/user/{id}": {
                "get": {"summary": "A user", "parameters": id, "responses": {"200": {"description": "The user", "content": user_ref["content"]}, "404": problem("Unknown or deleted")}},
                "patch": {"summary": "Change email, firstName or lastName (owner or admin)", "parameters": id,
                    "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/UserInput"}}}},
                    "responses": {"200": {"description": "The user", "content": user_ref["content"]}, "403": problem("Not the owner"), "404": problem("Unknown"), "422": problem("Invalid fields")}},
                "delete": {"summary": "Soft-delete a user (owner or admin); their products become inactive", "parameters": id,
                    "responses": {"204": {"description": "Deleted"}, "403": problem("Not the owner"), "404": problem("Unknown")}}},
            "/user/{id}/stats": {"get": {"summary": "Statistics kept from product events", "parameters": id,
                "responses": {"200": {"description": "{userId, productCount, productsCreated, productsDeleted, lastEventAt}"}, "404": problem("Unknown")}}},
            "/user/{id}/products": {"get": {"summary": "The user's products, asked of product-service over HTTP", "parameters": id,
                "responses": {"200": {"description": "{userId, products}"}, "404": problem("Unknown"), "503": problem("product-service unavailable")}}},
            "/health": {"get": {"summary": "Liveness", "security": [], "responses": {"200": {"description": "ok"}}}},
            "/ready": {"get": {"summary": "Readiness (store reachable)", "security": [], "responses": {"200": {"description": "ready"}}}}
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
            "schemas": {
                "UserInput": {"type": "object", "properties": {"firstName": {"type": "string", "maxLength": 100}, "lastName": {"type": "string", "maxLength": 100}, "email": {"type": "string", "format": "email"}}},
                "User": {"type": "object", "properties": {"id": {"type": "string"}, "email": {"type": "string"}, "firstName": {"type": "string"}, "lastName": {"type": "string"},
                         "productCount": {"type": "integer"}, "createdAt": {"type": "string", "format": "date-time"}, "updatedAt": {"type": "string", "format": "date-time"}}},
                "Problem": {"type": "object", "properties": {"type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"}, "detail": {"type": "string"},
                            "errors": {"type": "array", "items": {"type": "object", "properties": {"field": {"type": "string"}, "message": {"type": "string"}}}}}}
            }
        }
    })
}
