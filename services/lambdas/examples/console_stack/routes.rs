//! The HTTP API's routes, as the stack declares them: `PUBLISH_API_ROUTES` of
//! infra/lib/switchboard-stack.ts, read from that file when this example is compiled. API
//! Gateway hands the function only a request that matches one (`GET /v1/tenants/{tenant}/…`:
//! one path segment per parameter) and answers anything else 404 itself, so a call the
//! console makes that the stack does not route fails here as it would on AWS.

const STACK_SOURCE: &str = include_str!("../../../../infra/lib/switchboard-stack.ts");
const START: &str = "export const PUBLISH_API_ROUTES";

/// One route: `METHOD /path/{param}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub method: String,
    pub path: String,
}

impl Route {
    /// `"GET /v1/tenants/{tenant}/presence"`.
    pub fn key(&self) -> String {
        format!("{} {}", self.method, self.path)
    }

    /// The path parameters when `method` and `path` match this route.
    pub fn matches(&self, method: &str, path: &str) -> Option<Vec<(String, String)>> {
        if !self.method.eq_ignore_ascii_case(method) {
            return None;
        }
        let template: Vec<&str> = self.path.split('/').collect();
        let actual: Vec<&str> = path.split('/').collect();
        if template.len() != actual.len() {
            return None;
        }
        let mut parameters = Vec::new();
        for (t, a) in template.iter().zip(&actual) {
            match t.strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
                Some(name) if !a.is_empty() => parameters.push((name.to_string(), a.to_string())),
                Some(_) => return None,
                None if t == a => {}
                None => return None,
            }
        }
        Some(parameters)
    }
}

/// The routes of the stack's `PUBLISH_API_ROUTES`: lines `[apigwv2.HttpMethod.GET, '/v1/…'],`
/// up to the closing `];`.
pub fn publish_api_routes() -> Result<Vec<Route>, String> {
    let start = STACK_SOURCE
        .find(START)
        .ok_or_else(|| format!("infra/lib/switchboard-stack.ts has no `{START}`"))?;
    let block = &STACK_SOURCE[start..];
    let end = block.find("\n];").unwrap_or(block.len());
    let routes: Vec<Route> = block[..end]
        .lines()
        .filter_map(|line| {
            let rest = line.trim().strip_prefix("[apigwv2.HttpMethod.")?;
            let (method, rest) = rest.split_once(',')?;
            let path = rest.trim().strip_prefix('\'')?.split('\'').next()?;
            Some(Route {
                method: method.trim().to_string(),
                path: path.to_string(),
            })
        })
        .collect();
    if routes.is_empty() {
        return Err(
            "no routes read from PUBLISH_API_ROUTES in infra/lib/switchboard-stack.ts".into(),
        );
    }
    Ok(routes)
}
