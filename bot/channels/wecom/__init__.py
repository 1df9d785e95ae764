"""The WeCom (企业微信) channel: callback crypto and parsing, the callback route, the API client."""
