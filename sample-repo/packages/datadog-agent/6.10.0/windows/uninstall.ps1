# Remove the Datadog agent (demo build) for Windows.
$ErrorActionPreference = 'Stop'
$prefix = Join-Path $env:ProgramFiles 'Datadog\Datadog Agent'
$agent = Join-Path $prefix 'bin\datadog-agent.ps1'
if (Test-Path $agent) { & $agent stop }
Remove-Item -Recurse -Force -ErrorAction SilentlyContinue -Path $prefix
Write-Output 'datadog-agent 6.10.0 removed'
exit 0
