output "function_url" {
  description = "The URL to ask: curl -N \"$${URL}articles/stream?question=what+is+websocket\"."
  value       = aws_lambda_function_url.runnel.function_url
}

output "function_name" {
  value = aws_lambda_function.runnel.function_name
}

output "log_group" {
  value = aws_cloudwatch_log_group.runnel.name
}
