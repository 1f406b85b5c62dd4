# runnel on AWS Lambda, behind a public Function URL that streams the answer
# (invoke_mode RESPONSE_STREAM). Build the zip first (make lambda). See
# docs/lambda.md.

locals {
  zip_path = coalesce(var.zip_path, "${path.module}/../../../dist/lambda/runnel-lambda.zip")
}

data "aws_partition" "current" {}

resource "aws_iam_role" "runnel" {
  name = var.name
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Action    = "sts:AssumeRole"
      Principal = { Service = "lambda.amazonaws.com" }
    }]
  })
}

resource "aws_iam_role_policy_attachment" "logs" {
  role       = aws_iam_role.runnel.name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
}

resource "aws_cloudwatch_log_group" "runnel" {
  name              = "/aws/lambda/${var.name}"
  retention_in_days = var.log_retention_days
}

resource "aws_lambda_function" "runnel" {
  function_name                  = var.name
  description                    = "runnel, streaming answers through a Function URL"
  role                           = aws_iam_role.runnel.arn
  filename                       = local.zip_path
  source_code_hash               = filebase64sha256(local.zip_path)
  handler                        = "bootstrap"
  runtime                        = "provided.al2023"
  architectures                  = ["arm64"]
  memory_size                    = var.memory_size
  timeout                        = var.timeout
  reserved_concurrent_executions = var.reserved_concurrency

  environment {
    variables = merge({
      RUNNEL_LOG_FORMAT  = "json"
      RUNNEL_DB          = var.database_path
      RUNNEL_LLM_URL     = var.llm_url
      RUNNEL_LLM_MODEL   = var.llm_model
      RUNNEL_LLM_API_KEY = var.llm_api_key
      RUNNEL_REDIS_URL   = var.redis_url
      RUNNEL_RUN_LEASE   = var.run_lease
    }, var.environment)
  }

  depends_on = [aws_cloudwatch_log_group.runnel, aws_iam_role_policy_attachment.logs]
}

# The Function URL. RESPONSE_STREAM is what makes it stream: with the
# default (BUFFERED) the client gets the whole answer at the end.
resource "aws_lambda_function_url" "runnel" {
  function_name      = aws_lambda_function.runnel.function_name
  authorization_type = "NONE"
  invoke_mode        = "RESPONSE_STREAM"
}

# authorization_type NONE checks nothing, but the function's resource policy
# still has to let everyone in, and since October 2025 a new Function URL
# needs both statements: lambda:InvokeFunctionUrl, and lambda:InvokeFunction
# limited to calls that come through the Function URL. (The provider also
# adds statements of its own, named FunctionURLAllow..., when it creates a
# NONE URL; these are the ones this module keeps in its state.)
resource "aws_lambda_permission" "invoke_function_url" {
  statement_id           = "RunnelPublicInvokeFunctionUrl"
  action                 = "lambda:InvokeFunctionUrl"
  function_name          = aws_lambda_function.runnel.function_name
  principal              = "*"
  function_url_auth_type = "NONE"
}

resource "aws_lambda_permission" "invoke_function" {
  statement_id             = "RunnelPublicInvokeFunction"
  action                   = "lambda:InvokeFunction"
  function_name            = aws_lambda_function.runnel.function_name
  principal                = "*"
  invoked_via_function_url = true
}
