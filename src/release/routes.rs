//! A parent model's routes against the classes its served package was trained on: the router
//! sends a photo to the child serving the sub-group the parent names, so every class needs a
//! route and every route a class. Checked at `plan` from the package's own classes.json
//! (registered with it by the pipeline), never from a hand-kept list.

use std::collections::BTreeMap;

use crate::aws::platform::Platform;
use crate::config::{Environment, Model};
use crate::error::Error;

use super::serving::Resolved;

/// Every parent whose served package's classes and routes disagree, as one error each.
pub async fn check<P: Platform>(
    platform: &P,
    environment: &Environment,
    serving: &BTreeMap<String, Resolved>,
) -> Vec<Error> {
    let mut errors = Vec::new();
    for parent in environment.models.iter().filter(|m| !m.routes.is_empty()) {
        let Some(arn) = serving.get(&parent.name).and_then(|r| r.arn.as_deref()) else {
            continue;
        };
        if let Err(error) = check_parent(platform, parent, arn).await {
            errors.push(error);
        }
    }
    errors
}

async fn check_parent<P: Platform>(platform: &P, parent: &Model, arn: &str) -> Result<(), Error> {
    let unreadable = |why: String| {
        Error::Usage {
        message: format!(
            "cannot read the classes of `{}`'s package {arn}: {why}",
            parent.name
        ),
        hint: Some(
            "the router needs the package's classes.json (customer metadata `classes`, recorded by the pipeline's Register step); register the model again with this version's pipeline"
                .into(),
        ),
    }
    };
    let package = platform
        .model_package(arn)
        .await
        .map_err(|error| unreadable(error.to_string()))?
        .ok_or_else(|| unreadable("no such package".into()))?;
    let uri = package
        .classes_uri
        .ok_or_else(|| unreadable("it has no `classes` metadata".into()))?;
    let text = platform
        .read_object(&uri)
        .await
        .map_err(|error| unreadable(format!("{uri}: {error}")))?
        .ok_or_else(|| unreadable(format!("{uri} does not exist")))?;
    let classes: Vec<String> = serde_json::from_str(&text)
        .map_err(|error| unreadable(format!("{uri} is not a JSON list of names: {error}")))?;
    match disagreement(&classes, &parent.routes) {
        None => Ok(()),
        Some(difference) => Err(Error::Usage {
            message: format!(
                "model `{}` serves version {} ({arn}), trained on the sub-groups [{}], but its routes are [{}]: {difference}",
                parent.name,
                package.version,
                classes.join(", "),
                parent.routes.join(", ")
            ),
            hint: Some(format!(
                "make `routes` of `{}` name exactly the sub-groups its model predicts (each with a child model), or serve a package trained on the routed sub-groups",
                parent.name
            )),
        }),
    }
}

/// What differs between the classes and the routes, in words; `None` when they agree.
pub fn disagreement(classes: &[String], routes: &[String]) -> Option<String> {
    let unrouted: Vec<&str> = classes
        .iter()
        .filter(|class| !routes.contains(class))
        .map(String::as_str)
        .collect();
    let untrained: Vec<&str> = routes
        .iter()
        .filter(|route| !classes.contains(route))
        .map(String::as_str)
        .collect();
    let mut parts = Vec::new();
    if !unrouted.is_empty() {
        parts.push(format!(
            "the model predicts {} but no route leads there",
            quoted(&unrouted)
        ));
    }
    if !untrained.is_empty() {
        parts.push(format!(
            "{} {} routed but the model never predicts {}",
            quoted(&untrained),
            if untrained.len() == 1 { "is" } else { "are" },
            if untrained.len() == 1 { "it" } else { "them" }
        ));
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

fn quoted(names: &[&str]) -> String {
    names
        .iter()
        .map(|name| format!("`{name}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(items: &[&str]) -> Vec<String> {
        items.iter().map(|item| item.to_string()).collect()
    }

    #[test]
    fn the_same_names_in_any_order_agree() {
        assert_eq!(
            disagreement(
                &names(&["trees", "grasses", "flowers"]),
                &names(&["flowers", "trees", "grasses"])
            ),
            None
        );
    }

    #[test]
    fn each_side_of_a_difference_is_named() {
        assert_eq!(
            disagreement(
                &names(&["trees", "ferns", "grasses"]),
                &names(&["trees", "grasses", "mosses"])
            )
            .as_deref(),
            Some(
                "the model predicts `ferns` but no route leads there; `mosses` is routed but the model never predicts it"
            )
        );
    }
}
