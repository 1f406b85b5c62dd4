variable "name" {
  description = "Name of the function, its role and its log group."
  type        = string
  default     = "runnel"
}

variable "zip_path" {
  description = "The package build.sh makes; default: dist/lambda/runnel-lambda.zip in the runnel repository this module is in."
  type        = string
  default     = null
}

variable "memory_size" {
  description = "Memory in MB; CPU grows with it."
  type        = number
  default     = 512
}

variable "timeout" {
  description = "Seconds an invocation may run (at most 900). A stream ends with a timeout error event half a second before it."
  type        = number
  default     = 300
}

variable "reserved_concurrency" {
  description = "The most streams open at once (each takes one execution environment); -1 for no limit of the function's own."
  type        = number
  default     = -1
}

variable "log_retention_days" {
  description = "Days CloudWatch keeps the function's logs."
  type        = number
  default     = 14
}

variable "llm_url" {
  description = "RUNNEL_LLM_URL, the base URL of an OpenAI-compatible API. Empty answers with the offline extractive generator."
  type        = string
  default     = ""
}

variable "llm_model" {
  description = "RUNNEL_LLM_MODEL, the model to ask."
  type        = string
  default     = ""
}

variable "llm_api_key" {
  description = "RUNNEL_LLM_API_KEY, the API key for llm_url."
  type        = string
  default     = ""
  sensitive   = true
}

variable "database_path" {
  description = "RUNNEL_DB: /var/task/runnel.db for a database bundled with build.sh --db; empty for the embedded articles."
  type        = string
  default     = ""
}

variable "redis_url" {
  description = "RUNNEL_REDIS_URL (redis://[:password@]host:port/db, rediss:// for TLS): a Redis every execution environment reaches, so that a run asked through one invocation can be resumed and canceled through another. Empty keeps each run in the environment that produced it (not resumable)."
  type        = string
  default     = ""
  sensitive   = true
}

variable "run_lease" {
  description = "RUNNEL_RUN_LEASE: with redis_url, how long a run outlives an environment that stops producing it (a Go duration such as \"5s\"); empty for the default, 5s."
  type        = string
  default     = ""
}

variable "environment" {
  description = "More RUNNEL_* settings (RUNNEL_MAX_QUESTION, RUNNEL_PING_INTERVAL, ...); they override the module's."
  type        = map(string)
  default     = {}
}
