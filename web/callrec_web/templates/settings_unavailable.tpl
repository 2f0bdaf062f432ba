% rebase('layout.tpl', title=_('Settings'), section='settings')
<p><a href="/settings">← {{_('Settings')}}</a></p>
<h1>{{_('Settings')}}</h1>
<div class="errors" role="alert">
  <p>{{_('The configuration file cannot be used, so nothing can be changed here:')}}</p>
  <p><code>{{error}}</code></p>
</div>
<p>{{_('The recorder keeps running with the settings it started with. Correct the file by hand (or restore a configuration backup), then reload this page.')}}</p>
% if path:
<p>{{_('File:')}} <code>{{path}}</code></p>
% end
