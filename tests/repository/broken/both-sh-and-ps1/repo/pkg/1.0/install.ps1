Write-Output 'ok'
exit 0
