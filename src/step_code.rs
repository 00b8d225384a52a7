//! Code shipped to S3 from a project folder: the pipeline's step code (`steps/`, one object
//! per file) and the router function (`router/`, one ZIP package). Which files ship, their
//! content hash, and the S3 keys apply uploads them to. The hash names the objects, so the
//! rendered stacks reference exactly the code of this checkout and unchanged code is the
//! same objects.

use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::render::{Asset, hash};

/// The folder of step code inside a project.
pub const STEPS_DIR: &str = "steps";
/// Key prefix of the step code in the artifacts bucket: `code/<hash>/<file>`.
const KEY_PREFIX: &str = "code";

/// The shipped files of `steps/`, read from disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepCode {
    /// `(file name, content)`, sorted by name.
    files: Vec<(String, std::sync::Arc<str>)>,
    hash: String,
}

impl StepCode {
    /// Reads every `*.py` file and `requirements.txt` directly inside `<project>/steps`.
    pub fn load(project_dir: &Path) -> Result<StepCode, Error> {
        StepCode::load_folder(project_dir, STEPS_DIR)
    }

    /// Reads every `*.py` file and `requirements.txt` directly inside `<project>/<folder>`.
    pub fn load_folder(project_dir: &Path, folder: &str) -> Result<StepCode, Error> {
        let directory = project_dir.join(folder);
        let entries = std::fs::read_dir(&directory).map_err(|source| Error::Usage {
            message: format!("cannot read the code in {}: {source}", directory.display()),
            hint: Some(format!(
                "the stacks ship the code in `{folder}/`; run from the project folder or pass `-C/--project-dir`"
            )),
        })?;
        let mut paths: Vec<PathBuf> = Vec::new();
        for entry in entries {
            let path = entry
                .map_err(|source| Error::io("read", &directory, source))?
                .path();
            if path.is_file() && ships(&path) {
                paths.push(path);
            }
        }
        paths.sort();
        let mut files = Vec::with_capacity(paths.len());
        for path in paths {
            let bytes = std::fs::read(&path).map_err(|source| Error::io("read", &path, source))?;
            let text = String::from_utf8(bytes).map_err(|_| Error::Usage {
                message: format!("{} is not UTF-8 text", path.display()),
                hint: Some("step code is uploaded as text; save the file as UTF-8".into()),
            })?;
            let name = path
                .file_name()
                .map(|name| name.to_string_lossy().into_owned())
                .unwrap_or_default();
            files.push((name, text));
        }
        Ok(StepCode::from_files(files))
    }

    /// Step code from `(file name, content)` pairs, in any order.
    pub fn from_files(mut files: Vec<(String, String)>) -> StepCode {
        files.sort();
        // Names and contents, each length-prefixed, so no two different trees hash alike by
        // moving bytes across a boundary.
        let mut text = String::new();
        for (name, content) in &files {
            text.push_str(&format!("{}:{name}{}:", name.len(), content.len()));
            text.push_str(content);
        }
        StepCode {
            hash: hash(&text),
            files: files
                .into_iter()
                .map(|(name, content)| (name, content.into()))
                .collect(),
        }
    }

    /// The content hash naming the code's folder.
    pub fn hash(&self) -> &str {
        &self.hash
    }

    /// An error naming the first of `scripts` that `steps/` lacks.
    pub fn require(&self, scripts: &[&str]) -> Result<(), Error> {
        self.require_in(STEPS_DIR, "the pipelines run", scripts)
    }

    /// An error naming the first of `files` that `<folder>/` lacks; `user` says who needs it.
    pub fn require_in(&self, folder: &str, user: &str, files: &[&str]) -> Result<(), Error> {
        match files
            .iter()
            .find(|file| !self.file_names().any(|name| name == **file))
        {
            None => Ok(()),
            Some(file) => Err(Error::Usage {
                message: format!("{user} {folder}/{file}, which does not exist"),
                hint: Some(format!(
                    "restore {folder}/{file} (the code ships from `{folder}/`)"
                )),
            }),
        }
    }

    /// The code as one ZIP package at `functions/<name>/<hash>.zip`, for a Lambda function.
    pub fn zip_asset(&self, bucket: &str, name: &str) -> Asset {
        let files: Vec<(String, Vec<u8>)> = self
            .files
            .iter()
            .map(|(file, content)| (file.clone(), content.as_bytes().to_vec()))
            .collect();
        Asset {
            bucket: bucket.to_string(),
            key: format!("functions/{name}/{}.zip", self.hash),
            body: aws_smithy_types::base64::encode(crate::zip::stored(&files)).into(),
            base64: true,
        }
    }

    pub fn file_names(&self) -> impl Iterator<Item = &str> {
        self.files.iter().map(|(name, _)| name.as_str())
    }

    /// `s3://<bucket>/code/<hash>/`: the prefix the pipelines' processing steps read.
    pub fn uri(&self, bucket: &str) -> String {
        format!("s3://{bucket}/{KEY_PREFIX}/{}/", self.hash)
    }

    /// One asset per file, for apply to upload before the pipeline stacks.
    pub fn assets(&self, bucket: &str) -> Vec<Asset> {
        self.files
            .iter()
            .map(|(name, content)| Asset {
                bucket: bucket.to_string(),
                key: format!("{KEY_PREFIX}/{}/{name}", self.hash),
                body: content.clone(),
                base64: false,
            })
            .collect()
    }
}

fn ships(path: &Path) -> bool {
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy())
        .unwrap_or_default();
    !name.starts_with('.')
        && (name == "requirements.txt" || path.extension().is_some_and(|ext| ext == "py"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(files: &[(&str, &str)]) -> StepCode {
        StepCode::from_files(
            files
                .iter()
                .map(|(name, body)| (name.to_string(), body.to_string()))
                .collect(),
        )
    }

    #[test]
    fn the_hash_follows_the_content_not_the_order() {
        let one = code(&[("a.py", "x"), ("b.py", "y")]);
        let same = code(&[("b.py", "y"), ("a.py", "x")]);
        assert_eq!(one.hash(), same.hash());
        assert_ne!(one.hash(), code(&[("a.py", "x"), ("b.py", "z")]).hash());
        assert_ne!(one.hash(), code(&[("a.py", "x"), ("c.py", "y")]).hash());
        // Bytes moved from one file to the next are a different tree.
        assert_ne!(
            code(&[("a.py", "xy"), ("b.py", "")]).hash(),
            code(&[("a.py", "x"), ("b.py", "y")]).hash()
        );
    }

    #[test]
    fn assets_sit_under_the_hash_the_uri_names() {
        let step_code = code(&[("evaluate.py", "print(1)\n")]);
        let uri = step_code.uri("artifacts");
        let assets = step_code.assets("artifacts");
        assert_eq!(assets.len(), 1);
        assert_eq!(
            format!("s3://{}/{}", assets[0].bucket, assets[0].key),
            format!("{uri}evaluate.py")
        );
        assert_eq!(&*assets[0].body, "print(1)\n");
    }

    #[test]
    fn only_scripts_and_their_requirements_ship() {
        let dir = tempfile::tempdir().expect("temp dir");
        let steps = dir.path().join(STEPS_DIR);
        std::fs::create_dir_all(steps.join("__pycache__")).expect("mkdir");
        for name in ["b.py", "a.py", "requirements.txt", "notes.md", ".hidden.py"] {
            std::fs::write(steps.join(name), name).expect("write");
        }
        std::fs::write(steps.join("__pycache__/a.cpython-311.pyc"), "x").expect("write");
        let loaded = StepCode::load(dir.path()).expect("loads");
        assert_eq!(
            loaded.file_names().collect::<Vec<_>>(),
            ["a.py", "b.py", "requirements.txt"]
        );
    }

    #[test]
    fn a_script_the_pipelines_run_must_ship() {
        let step_code = code(&[("evaluate.py", "")]);
        assert!(step_code.require(&["evaluate.py"]).is_ok());
        let error = step_code
            .require(&["evaluate.py", "preprocess.py"])
            .expect_err("preprocess.py missing");
        assert_eq!(
            error.to_string(),
            "the pipelines run steps/preprocess.py, which does not exist"
        );
    }

    #[test]
    fn a_missing_steps_folder_is_an_error_with_a_hint() {
        let dir = tempfile::tempdir().expect("temp dir");
        let error = StepCode::load(dir.path()).expect_err("no steps/");
        assert!(error.to_string().contains("steps"), "{error}");
        assert!(error.hint().is_some_and(|hint| hint.contains("steps/")));
    }
}
