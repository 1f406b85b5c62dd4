terraform {
  required_version = ">= 1.5"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # 6.28 added invoked_via_function_url to aws_lambda_permission.
      version = ">= 6.28"
    }
  }
}
