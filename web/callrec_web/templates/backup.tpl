% rebase('layout.tpl', title=_('Backup and restore'), section='settings')
<p><a href="/settings">{{_('← Settings')}}</a></p>
<h1>{{_('Backup and restore')}}</h1>
<p>{{_('A backup holds the configuration file and, if you include it, the do-not-record list. It never holds recordings, their keys, the device key, the HTTPS key, passwords or accounts: a replacement box gets its own keys and its accounts from its first administrator.')}}</p>
% if done:
<p class="flash" role="status">{{_('The backup was restored.')}} {{done}}</p>
% end
% if not available:
<div class="errors" role="alert"><p>{{_('No configuration file is being served here: backup and restore are not available.')}}</p></div>
% end
<section aria-labelledby="backup-h">
  <h2 id="backup-h">{{_('Make a backup')}}</h2>
% if build_errors.get('form'):
  <div class="errors" role="alert" id="backup-error"><p>{{build_errors['form']}}</p></div>
% end
  <form method="post" action="/settings/backup" class="stack">
    <input type="hidden" name="csrf_token" value="{{csrf}}">
    <fieldset>
      <legend>{{_('Do-not-record list')}}</legend>
      <label><input type="checkbox" name="include_list" value="1" checked aria-describedby="list-help"> {{_('Include the do-not-record list')}}</label>
      <p class="help" id="list-help">{{_('Recommended: without it, a replacement box would record the people who objected. The list is personal data, so the backup is then encrypted with the passphrase below; keep the passphrase apart from the file.')}}</p>
    </fieldset>
    <fieldset>
      <legend>{{_('Passphrase')}}</legend>
      <label for="bk-pass">{{_('Passphrase (at least {n} characters)', n=passphrase_min)}}</label>
      <input id="bk-pass" name="passphrase" type="password" autocomplete="new-password" minlength="{{passphrase_min}}" maxlength="256"{{!' aria-invalid="true" aria-describedby="bk-pass-error"' if build_errors.get('passphrase') else ''}}>
% if build_errors.get('passphrase'):
      <p class="field-error" id="bk-pass-error">{{build_errors['passphrase']}}</p>
% end
      <label for="bk-confirm">{{_('The passphrase again')}}</label>
      <input id="bk-confirm" name="confirm" type="password" autocomplete="new-password" maxlength="256"{{!' aria-invalid="true" aria-describedby="bk-confirm-error"' if build_errors.get('confirm') else ''}}>
% if build_errors.get('confirm'):
      <p class="field-error" id="bk-confirm-error">{{build_errors['confirm']}}</p>
% end
    </fieldset>
    <button type="submit"{{!'' if available else ' disabled'}}>{{_('Download the backup')}}</button>
  </form>
</section>
<section aria-labelledby="restore-h">
  <h2 id="restore-h">{{_('Restore a backup')}}</h2>
  <p>{{_('Nothing changes until you have seen what the backup would change and confirmed it. The do-not-record list is only added to: entries on this box stay.')}}</p>
% if restore_error:
  <div class="errors" role="alert" id="restore-error">
    <p>{{restore_error}} {{_('Nothing was changed on this box.')}}</p>
%   if restore_detail:
    <p><code>{{restore_detail}}</code></p>
%   end
  </div>
% end
  <form method="post" action="/settings/backup/restore" enctype="multipart/form-data" class="stack">
    <input type="hidden" name="csrf_token" value="{{csrf}}">
    <label for="rs-file">{{_('Backup file (.cbk, at most {kib} KiB)', kib=max_kib)}}</label>
    <input id="rs-file" name="archive" type="file" accept=".cbk" required{{!' aria-describedby="restore-error"' if restore_error else ''}}>
    <label for="rs-pass">{{_('Its passphrase, if it has one')}}</label>
    <input id="rs-pass" name="passphrase" type="password" autocomplete="off" maxlength="256">
    <button type="submit"{{!'' if available else ' disabled'}}>{{_('Check the backup')}}</button>
  </form>
</section>
