//! The agent protocol (`/api/agent/...`), as a remote agent speaks it. A
//! stale lease epoch comes back as an [`Error::Api`] with status 409; see
//! [`Error::is_stale_lease`].

use reqwest::Method;
use sluice_proto::{
    AgentList, ClaimTryRequest, ClaimTryResponse, ClaimedTry, CompleteTryRequest, CompletedTry,
    HeartbeatRequest, HeartbeatResponse, LogChunkRequest, ProjectVersion, RegisterAgentRequest,
    RegisteredAgent, UploadedFile,
};

use crate::{Client, Error, Result};

impl Error {
    /// Whether the server refused a write because the try's lease is no
    /// longer the caller's (HTTP 409): the try must be stopped.
    pub fn is_stale_lease(&self) -> bool {
        self.status() == Some(409)
    }
}

impl Client {
    /// `GET /api/agents`: remote agents by name.
    pub async fn list_agents(&self) -> Result<AgentList> {
        self.get(&["api", "agents"], &[]).await
    }

    /// `POST /api/agent/register`.
    pub async fn register_agent(&self, body: &RegisterAgentRequest) -> Result<RegisteredAgent> {
        let url = self.url(&["api", "agent", "register"]);
        let request = self.request(Method::POST, url.clone()).json(body);
        self.json(request, &url).await
    }

    /// `POST /api/agent/claim`: a try, or `None` when nothing became
    /// claimable while the server held the request.
    pub async fn claim_try(&self, body: &ClaimTryRequest) -> Result<Option<ClaimedTry>> {
        let url = self.url(&["api", "agent", "claim"]);
        let request = self.request(Method::POST, url.clone()).json(body);
        let answer: ClaimTryResponse = self.json(request, &url).await?;
        Ok(answer.claimed)
    }

    /// `GET /api/agent/projects/{version}`: the files of a project version.
    pub async fn agent_project_version(&self, version: &str) -> Result<ProjectVersion> {
        self.get(&["api", "agent", "projects", version], &[]).await
    }

    /// `GET /api/agent/projects/{version}/files/{sha256}`: one file of a
    /// project version, written to `dest` as it arrives. The caller checks
    /// the written file's digest.
    pub async fn download_project_file(
        &self,
        version: &str,
        sha256: &str,
        dest: &std::path::Path,
    ) -> Result<u64> {
        use tokio::io::AsyncWriteExt;
        let url = self.url(&["api", "agent", "projects", version, "files", sha256]);
        let request = self.request(Method::GET, url.clone());
        let mut response = self.send(request, &url).await?;
        let local = |error: std::io::Error| Error::Transport {
            url: url.to_string(),
            reason: format!("cannot write {}: {error}", dest.display()),
        };
        let mut file = tokio::fs::File::create(dest).await.map_err(local)?;
        let mut written = 0u64;
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|error| crate::transport(&url, &error))?
        {
            file.write_all(&chunk).await.map_err(local)?;
            written += chunk.len() as u64;
        }
        file.flush().await.map_err(local)?;
        Ok(written)
    }

    /// `POST /api/agent/heartbeat`.
    pub async fn agent_heartbeat(&self, body: &HeartbeatRequest) -> Result<HeartbeatResponse> {
        let url = self.url(&["api", "agent", "heartbeat"]);
        let request = self.request(Method::POST, url.clone()).json(body);
        self.json(request, &url).await
    }

    /// `POST /api/agent/tries/{id}/logs`.
    pub async fn send_log_chunk(&self, try_id: &str, body: &LogChunkRequest) -> Result<()> {
        let url = self.url(&["api", "agent", "tries", try_id, "logs"]);
        let request = self
            .request(Method::POST, url.clone())
            .json(body)
            .timeout(crate::REQUEST_TIMEOUT);
        self.send(request, &url).await.map(drop)
    }

    /// `PUT /api/agent/tries/{id}/files`: uploads a file whose SHA-256 is
    /// `sha256`; the server checks it.
    pub async fn upload_file(
        &self,
        try_id: &str,
        epoch: i64,
        sha256: &str,
        content: Vec<u8>,
    ) -> Result<UploadedFile> {
        let url = self.url(&["api", "agent", "tries", try_id, "files"]);
        let request = self
            .request(Method::PUT, url.clone())
            .query(&[("epoch", epoch.to_string()), ("sha256", sha256.to_owned())])
            .header("content-type", "application/octet-stream")
            .body(content);
        self.json(request, &url).await
    }

    /// `POST /api/agent/tries/{id}/complete`.
    pub async fn complete_try(
        &self,
        try_id: &str,
        body: &CompleteTryRequest,
    ) -> Result<CompletedTry> {
        let url = self.url(&["api", "agent", "tries", try_id, "complete"]);
        let request = self.request(Method::POST, url.clone()).json(body);
        self.json(request, &url).await
    }
}
