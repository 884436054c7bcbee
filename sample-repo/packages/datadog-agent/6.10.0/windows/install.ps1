# Datadog agent 6.10.0 (demo build) for Windows. SSM Agent runs '.\install.ps1' in the
# unpacked package folder; additionalArguments arrive as SSM_* environment variables.
$ErrorActionPreference = 'Stop'
$version = '6.10.0'
$prefix = Join-Path $env:ProgramFiles 'Datadog\Datadog Agent'
$config = Join-Path $env:ProgramData 'Datadog'
New-Item -ItemType Directory -Force -Path (Join-Path $prefix 'bin'), $config | Out-Null
Copy-Item -Force -Path (Join-Path $PSScriptRoot 'datadog-agent.ps1') -Destination (Join-Path $prefix 'bin')
$configFile = Join-Path $config 'datadog.yaml'
if (-not (Test-Path $configFile)) {
    $site = if ($env:SSM_DD_SITE) { $env:SSM_DD_SITE } else { 'datadoghq.com' }
    (Get-Content (Join-Path $PSScriptRoot 'datadog.yaml.example')) -replace '^site:.*', "site: $site" |
        Set-Content -Path $configFile
}
Set-Content -Path (Join-Path $prefix 'version') -Value $version
& (Join-Path $prefix 'bin\datadog-agent.ps1') start
Write-Output "datadog-agent $version installed in $prefix"
exit 0
